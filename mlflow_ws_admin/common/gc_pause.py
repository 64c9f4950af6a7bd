"""Pausing Python's cycle collector around passes that allocate many objects and keep them alive.

The collector runs every few hundred allocations and, as objects age, walks the whole heap; a pass that holds
hundreds of thousands of rows, tuples and dicts, none of them in a cycle, pays for walks that free nothing.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Cycle collection off for the block (reference counting still frees everything that is not in a cycle);
    the few cycles the block leaves are collected once it is back on."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
