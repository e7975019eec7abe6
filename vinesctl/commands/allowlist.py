"""`vinesctl allowlist [add|remove DOMAIN...]`: the federation allowlist (XEP-0133
edit-whitelist), kept by the server next to the one in its configuration."""

from __future__ import annotations

from vinesctl.commands.remote import make_list_group

command = make_list_group(
    "allowlist",
    "whitelist",
    "Show the federation allowlist (the domains users may exchange stanzas with), or "
    "add/remove domains (XEP-0133 edit-whitelist).",
    "domain",
    domains=True,
)
