"""The live dashboard (`vinesctl dashboard`). Textual loads only in `app` and its widgets and
screens; `model` is pure and `feed` needs only asyncio and slixmpp, so `vinesctl presence` uses
them without Textual."""
