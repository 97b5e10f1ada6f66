"""Event loop choice: uvloop when installed (lower client CPU per request), else asyncio's."""
from __future__ import annotations


def install_fast_loop() -> bool:
    try:
        import uvloop
    except ImportError:
        return False
    uvloop.install()
    return True
