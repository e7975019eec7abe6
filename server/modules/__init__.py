"""Server modules: one feature per file, each with `setup(api)`."""

DEFAULT_MODULES = (
    "roster",
    "presence",
    "message",  # delivery to users (RFC 6121 8.5)
    "offline",
    "disco",
    "ping",
    "version",
    "time",
    "last",
    "vcard",
    "private",
    "load",
    "adhoc",  # XEP-0050; provides "adhoc", the command registry
    "admin",  # XEP-0133 account commands; provides "admins"
    "userlists",
    "announce",
    "message_admin",  # send-message: from the domain (vinesctl send --from-server)
    "roster_admin",  # roster-add, roster-remove (vinesctl roster)
    "service",
    "stats",
    "federation",  # our s2s admin nodes (vinesctl s2s)
    "presence_feed",
    "components",  # XEP-0114: disco items, their presence, the admin listing
    "cluster_admin",  # the nodes of the service (vinesctl cluster)
)
