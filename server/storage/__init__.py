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
    raise StorageError(f"storage.backend {cfg.backend!r} is unknown: use 'sqlite' or 'memory'")
