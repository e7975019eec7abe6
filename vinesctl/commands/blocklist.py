"""`vinesctl blocklist [add|remove DOMAIN...]`: the federation blocklist (XEP-0133
edit-blacklist), kept by the server next to the one in its configuration."""

from __future__ import annotations

from vinesctl.commands.remote import make_list_group

command = make_list_group(
    "blocklist",
    "blacklist",
    "Show the federation blocklist (domains refused outright), or add/remove domains "
    "(XEP-0133 edit-blacklist).",
    "domain",
    domains=True,
)
