"""Keep a long-running server's memory near what it uses, not what it once used.

glibc's malloc gives each thread its own arena and, after a large block is freed, raises
its threshold for serving large blocks from mmap, so the 10–30 MB buffers of decoded
photos end up in per-thread heaps that are never returned to the system: a server that
processed ten photos at once keeps that peak for good. Fixing the mmap threshold (large
blocks are mapped and unmapped, so freed means returned) and capping the arenas is the
standard remedy (see mallopt(3), M_MMAP_THRESHOLD and M_ARENA_MAX).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
log = logging.getLogger(__name__)


def tune_malloc(mmap_threshold: int = 1024 * 1024, arena_max: int = 2) -> bool:
    """Apply the settings on glibc; a no-op (False) elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    ok = bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(_M_ARENA_MAX, arena_max))
    if not ok:
        log.warning("mallopt refused the memory settings")
    return ok
