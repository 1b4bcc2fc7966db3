"""Atomic, durable writes: a killed process or a power cut never leaves a half-written file.

Data is written to a temporary sibling, flushed to disk (``fsync`` of the file, or of every
file of a folder), moved into place with ``os.replace`` (atomic on POSIX within one file
system), and the parent folder is fsynced so the rename itself survives a crash.

A folder that already exists is swapped with the new one in one step where the kernel
offers it (Linux ``renameat2(RENAME_EXCHANGE)``); elsewhere two renames are needed, and a
crash between them leaves the old folder in ``.<name>.old-*/<name>``, which
:func:`recover_dir` (run by the next :func:`atomic_dir` on that path, and by
``PreparedDataset``) moves back.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "atomic_path",
    "atomic_dir",
    "atomic_write_text",
    "file_digest",
    "fsync_path",
    "recover_dir",
]

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_path(path: str | os.PathLike) -> None:
    """Flush a file or a folder (its entries) to disk; file systems that refuse are skipped."""
    flags = os.O_RDONLY | (os.O_DIRECTORY if Path(path).is_dir() else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    except OSError as exc:  # e.g. EINVAL: the file system does not sync folders
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for folder, _, names in os.walk(root):
        for name in names:
            fsync_path(Path(folder) / name)
        fsync_path(folder)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2``); False where that is not offered."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.argtypes += [ctypes.c_uint]
    result = renameat2(
        _AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE
    )
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), os.fspath(a), None, os.fspath(b))


def recover_dir(path: str | os.PathLike) -> bool:
    """Move back the folder a crash between :func:`atomic_dir`'s two renames left aside.

    Returns:
        True when ``path`` was missing and a kept ``.<name>.old-*/<name>`` was restored.
    """
    path = Path(path)
    if path.exists() or not path.parent.is_dir():
        return False
    for old in sorted(path.parent.glob(f".{path.name}.old-*")):
        kept = old / path.name
        if kept.is_dir():
            os.replace(kept, path)
            fsync_path(path.parent)
            shutil.rmtree(old, ignore_errors=True)
            return True
    return False


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; fsync it and move it onto ``path`` on success.

    Args:
        path: final file path; its parent folder is created if missing.
        suffix: suffix of the temporary file (default: the final suffix, so writers
            that choose a format by extension, like ``np.savez``, keep working).

    On an exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=path.suffix if suffix is None else suffix, dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.exists():  # mkstemp makes 0600 files: give the usual umask-based mode
            os.chmod(tmp, 0o666 & ~_umask())
            fsync_path(tmp)
        os.replace(tmp, path)
        fsync_path(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; fsync it and swap it into place on success.

    An existing folder at ``path`` is replaced only after the new one is complete and on
    disk (one ``RENAME_EXCHANGE`` where available, else two renames that
    :func:`recover_dir` can undo); on an exception the temporary folder is removed and
    ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover_dir(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
        _fsync_tree(tmp)
        if path.exists() and _exchange(tmp, path):
            fsync_path(path.parent)  # tmp now holds the old folder: removed below
        elif path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            fsync_path(path.parent)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
            fsync_path(path.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def file_digest(path: str | os.PathLike, *, chunk: int = 1 << 20) -> str:
    """First 16 hex digits of the SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()[:16]
