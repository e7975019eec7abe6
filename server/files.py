"""The one naming rule for the files a server keeps next to its vines.toml. Kept apart from
`config` (dataclasses, PRECIS) so the console can find a server's files without that import."""

from __future__ import annotations

from pathlib import Path


def sibling_file(config_path: Path, suffix: str, node_index: int | None = None) -> Path:
    """vines.toml -> vines.pid, vines.state.json, vines.log; node K of a set started with
    --nodes N: vines@K.pid, vines@K.state.json, vines@K.log (systemd's instance syntax, which no
    config stem of ours uses)."""
    stem = config_path.stem if node_index is None else f"{config_path.stem}@{node_index}"
    return config_path.with_name(stem + suffix)
