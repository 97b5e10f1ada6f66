"""The run store: one SQLite file, versioned (``migrations``), that logs every call, item and appended line."""
from __future__ import annotations

from .base import default_store_path
from .migrations import latest as schema_version
from .runs import PrunePlan, PruneRefused, RunInfo, RunStore, StoreShares

__all__ = ["RunStore", "RunInfo", "PrunePlan", "PruneRefused", "StoreShares", "default_store_path", "schema_version"]
