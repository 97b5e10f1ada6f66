"""The row reader lives in `dialogforge.core.rows` (formats use it without the engine); re-exported here."""
from ..core.rows import Item, Line, count_items, iter_lines, read_items, read_records

__all__ = ["Item", "Line", "iter_lines", "read_items", "read_records", "count_items"]
