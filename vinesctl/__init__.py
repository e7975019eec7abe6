"""vinesctl: run, drive and diagnose XMPP servers."""

__version__ = "0.1.0"
