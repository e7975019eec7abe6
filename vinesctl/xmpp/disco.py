"""Service discovery (XEP-0030) over a logged-in session: info, items and a walk of the tree.

Results are plain dataclasses (rendered by `vinesctl.render.disco`, printed as JSON as they are).
Errors become `DiscoError` with the stanza error condition; when the account's server cannot
reach the queried domain, `unreachable()` turns that into a message that says so and names the fix.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from vinesctl.errors import VinesctlError
from vinesctl.probes.features import describe

NS_INFO = "http://jabber.org/protocol/disco#info"
NS_DATA = "jabber:x:data"
# conditions meaning "my server could not get there" rather than "the entity said no"
UNREACHABLE = {"remote-server-not-found", "remote-server-timeout", "not-allowed"}


@dataclass
class Identity:
    category: str
    type: str
    name: str = ""
    lang: str = ""


@dataclass
class Feature:
    var: str
    name: str = ""  # 'XEP-0199 XMPP Ping' for known namespaces


@dataclass
class Form:
    form_type: str
    fields: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Item:
    jid: str
    node: str = ""
    name: str = ""


@dataclass
class DiscoInfo:
    jid: str
    node: str = ""
    identities: list[Identity] = field(default_factory=list)
    features: list[Feature] = field(default_factory=list)
    forms: list[Form] = field(default_factory=list)


@dataclass
class TreeNode:
    jid: str
    node: str = ""
    name: str = ""
    identities: list[Identity] = field(default_factory=list)
    error: str = ""
    children: list[TreeNode] = field(default_factory=list)


@dataclass
class DiscoResult:
    jid: str
    node: str = ""
    info: DiscoInfo | None = None
    items: list[Item] | None = None
    tree: TreeNode | None = None


class DiscoError(VinesctlError):
    def __init__(self, jid: str, condition: str, text: str = "", fix: str | None = None) -> None:
        self.jid = jid
        self.condition = condition
        detail = f"{condition}: {text}" if text else condition
        super().__init__(f"disco query to {jid} failed ({detail})", fix)


def _domain(jid: str) -> str:
    return jid.partition("@")[2].partition("/")[0] if "@" in jid else jid.partition("/")[0]


def unreachable(err: DiscoError, own_domain: str) -> VinesctlError | None:
    """A clear error when the account's server cannot reach the queried domain, else None."""
    target = _domain(err.jid)
    if err.condition in UNREACHABLE and target.lower() != own_domain.lower():
        return VinesctlError(
            f"your server ({own_domain}) cannot reach {target} ({err.condition})",
            f"allow {target} in your server's federation (allowlist / s2s), or query it "
            f"with a profile on a server that can reach it (--profile)",
        )
    return None


async def _send(client: Any, call: str, jid: str, node: str, timeout: float) -> Any:
    from slixmpp.exceptions import IqError, IqTimeout

    disco = client.plugin["xep_0030"]
    try:
        return await getattr(disco, call)(jid=jid, node=node or None, timeout=timeout)
    except IqError as exc:
        err = exc.iq["error"]
        raise DiscoError(jid, err["condition"] or "error", err["text"] or "") from None
    except IqTimeout:
        raise DiscoError(
            jid, "timeout", f"no answer within {timeout:g}s", "the entity may be offline"
        ) from None


def _forms(query: Any) -> list[Form]:
    forms: list[Form] = []
    if query is None:
        return forms
    for x in query.findall(f"{{{NS_DATA}}}x"):
        fields: dict[str, list[str]] = {}
        form_type = ""
        for f in x.findall(f"{{{NS_DATA}}}field"):
            var = f.get("var", "")
            values = [v.text or "" for v in f.findall(f"{{{NS_DATA}}}value")]
            if var == "FORM_TYPE":
                form_type = values[0] if values else ""
            elif var:
                fields[var] = values
        forms.append(Form(form_type, fields))
    return forms


async def get_info(client: Any, jid: str, node: str = "", timeout: float = 10.0) -> DiscoInfo:
    iq = await _send(client, "get_info", jid, node, timeout)
    q = iq["disco_info"]
    identities = [
        Identity(cat, typ, name or "", lang or "")
        for cat, typ, lang, name in q.get_identities(dedupe=False)
    ]
    features = [Feature(var, describe(var)) for var in q.get_features(dedupe=False)]
    forms = _forms(iq.xml.find(f"{{{NS_INFO}}}query"))
    return DiscoInfo(jid, node, identities, features, forms)


async def get_items(client: Any, jid: str, node: str = "", timeout: float = 10.0) -> list[Item]:
    iq = await _send(client, "get_items", jid, node, timeout)
    return [Item(str(j), n or "", name or "") for j, n, name in iq["disco_items"]["items"]]


async def walk(
    client: Any, jid: str, node: str = "", depth: int = 2, timeout: float = 10.0
) -> TreeNode:
    """The items tree below jid/node, `depth` levels deep, with each node's identities."""
    seen: set[tuple[str, str]] = set()
    limit = asyncio.Semaphore(8)

    async def visit(j: str, n: str, name: str, level: int) -> TreeNode:
        seen.add((j, n))
        tree = TreeNode(j, n, name)
        async with limit:
            try:
                tree.identities = (await get_info(client, j, n, timeout)).identities
            except DiscoError as exc:
                tree.error = exc.condition
        if level >= depth:
            return tree
        try:
            async with limit:
                items = await get_items(client, j, n, timeout)
        except DiscoError as exc:
            if not tree.error and exc.condition not in ("feature-not-implemented",):
                tree.error = exc.condition
            return tree
        todo = [i for i in items if (i.jid, i.node) not in seen]
        for i in todo:
            seen.add((i.jid, i.node))
        tree.children = list(
            await asyncio.gather(*(visit(i.jid, i.node, i.name, level + 1) for i in todo))
        )
        return tree

    return await visit(jid, node, "", 0)
