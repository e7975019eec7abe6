"""Storage: the contract (base.py) and its backends. `open_storage(cfg)` picks one."""

from __future__ import annotations

from vines_server.config import StorageConfig
from vines_server.storage.base import (
    Account,
    AccountExists,
    NoSuchAccount,
    OfflineMessage,
    QuotaExceeded,
    RosterItem,
    Storage,
    StorageError,
)
from vines_server.storage.sqlite import SQLiteStorage

__all__ = [
    "Account",
    "AccountExists",
    "MemoryStorage",
    "NoSuchAccount",
    "OfflineMessage",
    "QuotaExceeded",
    "RosterItem",
    "SQLiteStorage",
    "Storage",
    "StorageError",
    "open_storage",
]


def open_storage(cfg: StorageConfig) -> Storage:
    """The configured backend, not yet opened: the caller awaits `open()` and `close()`."""
    if cfg.backend == "sqlite":
        return SQLiteStorage(cfg.path)
    if cfg.backend == "memory":  # tests and throw-away servers: imported only then
        from vines_server.storage.memory import MemoryStorage

        return MemoryStorage()
    if cfg.backend == "postgresql":
        return _postgresql(cfg)
    raise StorageError(
        f"storage.backend {cfg.backend!r} is unknown: use 'sqlite', 'postgresql' or 'memory'"
    )


def __getattr__(name: str) -> object:
    """`vines_server.storage.MemoryStorage`, imported at first use: a server on SQLite never
    loads the in-memory backend (issue 14: fresh RSS)."""
    if name == "MemoryStorage":
        from vines_server.storage.memory import MemoryStorage

        return MemoryStorage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _postgresql(cfg: StorageConfig) -> Storage:
    """Imported here, not at the top: asyncpg is an optional extra, loaded only by a server that
    chose this backend."""
    if not cfg.dsn:
        raise StorageError('storage.dsn is required with backend = "postgresql"')
    try:
        from vines_server.storage.postgresql import PostgreSQLStorage
    except ImportError as exc:
        raise StorageError(
            f"storage.backend 'postgresql' needs asyncpg ({exc}): "
            "pip install 'vinesctl[postgresql]'"
        ) from None
    return PostgreSQLStorage(cfg.dsn, cfg.dsn_password_file)
