"""What every layer may import: errors, the row reader/writer and the record schema.

Nothing here imports the engine, a workflow or a format, nor any network library, so
`dialogforge export` and `validate` start without aiohttp or the runner.
"""
from .errors import ConfigError, DialogforgeError, InputError
from .rows import JsonlWriter, Line, count_items, expand_inputs, iter_lines, read_items, read_records

__all__ = ["DialogforgeError", "ConfigError", "InputError", "Line", "iter_lines", "read_items", "count_items",
           "read_records", "JsonlWriter", "expand_inputs"]
