"""Server modules: one feature per file, each with `setup(api)`."""

DEFAULT_MODULES = (
    "roster",
    "presence",
    "offline",
    "disco",
    "ping",
    "version",
    "time",
    "last",
    "vcard",
    "private",
    "load",
)
