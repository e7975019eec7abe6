"""Rich renderers for `vinesctl disco`."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from rich.tree import Tree


def _identities(identities: list[Any]) -> str:
    return ", ".join(
        f"{i.category}/{i.type}" + (f" ({i.name})" if i.name else "") for i in identities
    )


def _label(jid: str, node: str, name: str = "") -> Text:
    text = Text(jid, style="bold")
    if node:
        text.append(f"  node={node}", style="cyan")
    if name:
        text.append(f"  {name}", style="italic")
    return text


def _tree(node: Any, branch: Tree) -> None:
    for child in node.children:
        label = _label(child.jid, child.node, child.name)
        if child.identities:
            label.append(f"  [{_identities(child.identities)}]", style="green")
        if child.error:
            label.append(f"  ({child.error})", style="red")
        _tree(child, branch.add(label))


def render_disco(result: Any) -> Group:
    parts: list[Any] = []
    title = result.jid + (f" node {result.node}" if result.node else "")
    info = result.info
    if info is not None:
        ids = Table(title=f"identities of {title}", title_justify="left")
        for col in ("category", "type", "name"):
            ids.add_column(col)
        for i in info.identities:
            ids.add_row(i.category, i.type, i.name)
        parts.append(ids)
        feats = Table(title=f"features ({len(info.features)})", title_justify="left")
        feats.add_column("namespace")
        feats.add_column("specification")
        for f in sorted(info.features, key=lambda f: f.var):
            feats.add_row(f.var, f.name or Text("-", style="dim"))
        parts.append(feats)
        for form in info.forms:
            table = Table(
                title=f"extended info {form.form_type or '(no FORM_TYPE)'}", title_justify="left"
            )
            table.add_column("field")
            table.add_column("values")
            for var, values in form.fields.items():
                table.add_row(var, "\n".join(values))
            parts.append(table)
    if result.items is not None:
        items = Table(title=f"items ({len(result.items)})", title_justify="left")
        for col in ("jid", "node", "name"):
            items.add_column(col)
        for item in result.items:
            items.add_row(item.jid, item.node, item.name)
        parts.append(items)
    if result.tree is not None:
        root = _label(result.tree.jid, result.tree.node)
        if result.tree.identities:
            root.append(f"  [{_identities(result.tree.identities)}]", style="green")
        tree = Tree(root)
        _tree(result.tree, tree)
        parts.append(tree)
    return Group(*parts)
