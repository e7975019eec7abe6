"""`vinesctl admins [add|remove JID...]`: the server's administrators (XEP-0133 edit-admin)."""

from __future__ import annotations

from vinesctl.commands.remote import make_list_group

command = make_list_group(
    "admins",
    "admin",
    "Show the service's administrators, or add/remove accounts of the profile's domain "
    "(XEP-0133 edit-admin).",
    "jid",
    domains=False,
)
