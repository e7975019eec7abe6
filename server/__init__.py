"""The bundled asyncio XMPP server (import name `vines_server`)."""

__version__ = "0.1.0"
