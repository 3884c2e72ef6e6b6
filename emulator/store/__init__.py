"""SQLite persistence: every resource, its full request, its status history and its tags."""

from emulator.store.db import Store
from emulator.store.records import Resource

__all__ = ["Store", "Resource"]
