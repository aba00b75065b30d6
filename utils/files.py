"""Atomic file output (nothing a stage writes is ever seen half-written) and portable file locks.

Every file is written to a temporary sibling in the same folder and moved into place with
``os.replace`` (atomic on POSIX), so a run killed at any moment leaves either the old file or the
new one, never a truncated one. A rerun then resumes from whatever is complete.

:func:`lock_file` / :func:`unlock_file` take an exclusive advisory lock on an open file: ``flock``
on POSIX, ``msvcrt.locking`` on Windows. Both are dropped by the operating system when the process
dies, so a killed run never leaves a stale lock behind.

Also the other ground-floor helpers every room shares: :func:`file_digest` / :func:`update_digest`
(hash a file in blocks) and :func:`usable_cores` (the CPUs this process may run on).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from utils.errors import Task1aError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
try:
    import msvcrt
except ImportError:  # POSIX
    msvcrt = None

log = logging.getLogger(__name__)

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it onto ``path`` atomically.

    Use it for writers that want a file name (``numpy.save``, ``model.save``, matplotlib).
    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the permissions of a plain open()
    except OSError as exc:
        raise Task1aError(f"cannot write {path}: {exc.strerror}; choose a writable output folder") from exc
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        raise Task1aError(f"cannot write {path}: {exc.strerror}; free disk space or choose a writable output folder") from exc
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (fsynced before the rename); return the path."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; return the path."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_yaml_atomic(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as block-style YAML (keys in insertion order) atomically; return the path."""
    return write_text_atomic(path, yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True))


def write_json_atomic(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON atomically; return the path."""
    return write_text_atomic(path, json.dumps(data, indent=2) + "\n")


# ------------------------------------------------------------------------------------- file locks
_LOCK_POLL_SECONDS = 0.1
_warned_no_locks = False


def lock_file(handle, blocking: bool = False) -> None:
    """Take an exclusive lock on the open file ``handle`` (opened for writing, e.g. ``open(p, "a")``).

    Raises :class:`BlockingIOError` (an ``OSError``) when another open file (in this process or
    another) holds it and ``blocking`` is false; with ``blocking`` it waits. POSIX: ``flock``.
    Windows: ``msvcrt.locking`` of the file's first byte. A platform with neither locks nothing and
    says so once in the log (two writers must then not share a folder).
    """
    if fcntl is not None:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                raise BlockingIOError(errno.EAGAIN, "locked by another process", getattr(handle, "name", None)) from None
            raise
        return
    if msvcrt is not None:
        while True:
            handle.seek(0)  # the lock covers byte 0 whatever the file's length (a lock may lie beyond EOF)
            try:
                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
                return
            except OSError as exc:
                if not blocking:
                    raise BlockingIOError(errno.EAGAIN, "locked by another process", getattr(handle, "name", None)) from exc
            time.sleep(_LOCK_POLL_SECONDS)
    global _warned_no_locks
    if not _warned_no_locks:
        _warned_no_locks = True
        log.warning("file locks are not available on this platform: do not run two writers on the same folder at once")


def unlock_file(handle) -> None:
    """Release the lock :func:`lock_file` took on ``handle`` (closing the file releases it too)."""
    if fcntl is not None:
        fcntl.flock(handle, fcntl.LOCK_UN)
    elif msvcrt is not None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)


# ---------------------------------------------------------------------------------- file digests
_DIGEST_BLOCK_BYTES = 1 << 20


def update_digest(hasher, path: str | os.PathLike, on_block: Callable[[int], Any] | None = None):
    """Feed the bytes of the file ``path`` to ``hasher`` (a hashlib object) a block at a time; return it.

    ``on_block(n_bytes)`` is called after each block (a progress bar's ``update``).
    """
    with open(path, "rb") as handle:
        while block := handle.read(_DIGEST_BLOCK_BYTES):
            hasher.update(block)
            if on_block is not None:
                on_block(len(block))
    return hasher


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of the file at ``path`` (``algorithm``: any hashlib name, e.g. ``sha256``, ``md5``)."""
    return update_digest(hashlib.new(algorithm), path).hexdigest()


# ----------------------------------------------------------------------------------------- cores
def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one, else all of them)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
