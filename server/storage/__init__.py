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
from vines_server.storage.memory import MemoryStorage
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
    if cfg.backend == "memory":
        return MemoryStorage()
    if cfg.backend == "postgresql":
        return _postgresql(cfg)
    raise StorageError(
        f"storage.backend {cfg.backend!r} is unknown: use 'sqlite', 'postgresql' or 'memory'"
    )


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
