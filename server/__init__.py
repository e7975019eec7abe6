"""The bundled asyncio XMPP server (import name `vines_server`)."""
