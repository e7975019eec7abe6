"""Sans-I/O XMPP core: bytes in, actions out. No asyncio, sockets or ssl here."""
