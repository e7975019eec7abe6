"""What the server announces in disco#info, collected from the modules that implement it.
Nothing hard-codes a feature list: a module that is loaded adds its own."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Features:
    server: set[str] = field(default_factory=set)  # features of the domain JID
    account: set[str] = field(default_factory=set)  # features of every account's bare JID
    identities: set[tuple[str, str, str]] = field(default_factory=set)  # (category, type, name)
    # disco#items of the domain: (jid, node or None, name or None)
    items: list[tuple[str, str | None, str | None]] = field(default_factory=list)
