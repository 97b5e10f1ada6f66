"""Streaming JSONL in and out: the one row reader and writer of `dialogforge.core.rows`.

A bad line is a reported row (`Line.error`), never an exception.
"""
from ..core.rows import JsonlWriter, Line, expand_inputs, iter_lines

__all__ = ["Line", "iter_lines", "JsonlWriter", "expand_inputs"]
