"""CPU allocator tuning: keep freed memory for reuse instead of returning it to the kernel.

A mesh autoencoder step allocates and frees the same large tensors every iteration (the
gathered spirals of a batch of 32 COMA meshes are ~185 MB). glibc serves blocks above 32 MB
with fresh ``mmap`` calls and unmaps them on free, so each step pays page faults and kernel
page zeroing for every large tensor again (on a small CPU that cost can exceed the
arithmetic; measured in docs/models.md).
``reuse_freed_memory()`` asks glibc (``mallopt``) to serve large blocks from the heap and not
to trim it, so freed blocks are reused. Process-wide; call it once in training/inference
entry points (the benchmark and trainer do). No-op off glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

__all__ = ["reuse_freed_memory"]

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_DEFAULT_MMAP_MAX = 65536


def reuse_freed_memory(enable: bool = True) -> bool:
    """Tune (or, with ``enable=False``, restore) glibc's large-block policy.

    Returns:
        ``True`` when the setting was applied (glibc found), ``False`` otherwise.
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    if enable:
        ok = mallopt(_M_MMAP_MAX, 0) and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
    else:
        ok = mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX) and mallopt(_M_TRIM_THRESHOLD, 128 * 1024)
    log.debug("reuse_freed_memory(%s): %s", enable, bool(ok))
    return bool(ok)
