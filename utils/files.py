"""Atomic file output: nothing a stage writes is ever seen half-written.

Every file is written to a temporary sibling in the same folder and moved into place with
``os.replace`` (atomic on POSIX), so a run killed at any moment leaves either the old file or the
new one, never a truncated one. A rerun then resumes from whatever is complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import yaml

from utils.errors import Task1aError

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
