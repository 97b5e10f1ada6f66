"""The errors every layer raises on purpose. The CLI turns them into one line and exit code 2."""
from __future__ import annotations


class DialogforgeError(Exception):
    """Base class for everything dialogforge raises on purpose."""


class ConfigError(DialogforgeError):
    """Invalid configuration; the message names the file and field."""


class InputError(DialogforgeError):
    """Bad input data; the message names the file and line."""
