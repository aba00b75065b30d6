"""utils.files: the portable file lock (``lock_file``: flock on POSIX, msvcrt on Windows, a logged no-op elsewhere),
``file_digest`` and ``usable_cores`` (the last two moved from test_features_split.py)."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from utils import files
from utils.files import lock_file, unlock_file
from utils.settings import worker_count

REPO_DIR = Path(__file__).resolve().parents[1]


class FakeMsvcrt:
    """msvcrt.locking's semantics: byte ranges of a file, held per open handle, LK_NBLCK fails when taken."""

    LK_UNLCK, LK_LOCK, LK_NBLCK, LK_RLCK, LK_NBRLCK = 0, 1, 2, 3, 4

    def __init__(self):
        self.held = {}  # (device, inode, offset) -> fd
        self.calls = []

    def locking(self, fd, mode, nbytes):
        stat = os.fstat(fd)
        key = (stat.st_dev, stat.st_ino, os.lseek(fd, 0, os.SEEK_CUR))
        self.calls.append((mode, key[2], nbytes))
        if mode == self.LK_UNLCK:
            if self.held.get(key) != fd:
                raise PermissionError(errno.EACCES, "not locked")
            del self.held[key]
        elif mode == self.LK_NBLCK:
            if key in self.held:
                raise PermissionError(errno.EACCES, "Permission denied")
            self.held[key] = fd
        else:
            raise AssertionError(f"unexpected locking mode {mode}")


@pytest.fixture(params=["posix", "windows"])
def backend(request, monkeypatch):
    if request.param == "posix":
        if files.fcntl is None:
            pytest.skip("no fcntl on this platform")
        return request.param
    monkeypatch.setattr(files, "fcntl", None)
    monkeypatch.setattr(files, "msvcrt", FakeMsvcrt())
    monkeypatch.setattr(files, "_LOCK_POLL_SECONDS", 0.01)
    return request.param


def test_a_held_lock_refuses_a_second_handle_until_released(tmp_path, backend):
    path = tmp_path / ".lock"
    with open(path, "a") as first, open(path, "a") as second:
        lock_file(first)
        with pytest.raises(BlockingIOError):
            lock_file(second)
        unlock_file(first)
        lock_file(second)  # free again
        with pytest.raises(OSError):
            lock_file(first)
        unlock_file(second)


def test_locks_of_other_files_are_independent(tmp_path, backend):
    with open(tmp_path / "a.lock", "a") as a, open(tmp_path / "b.lock", "a") as b:
        lock_file(a)
        lock_file(b)
        unlock_file(a)
        unlock_file(b)


def test_a_blocking_lock_waits_for_the_holder(tmp_path, backend):
    path = tmp_path / ".lock"
    with open(path, "a") as holder, open(path, "a") as waiter:
        lock_file(holder)
        released = threading.Event()

        def release_soon():
            time.sleep(0.2)
            released.set()
            unlock_file(holder)

        thread = threading.Thread(target=release_soon)
        thread.start()
        lock_file(waiter, blocking=True)
        assert released.is_set()
        thread.join()
        unlock_file(waiter)


def test_the_windows_lock_covers_byte_zero_whatever_the_file_position(tmp_path, monkeypatch):
    fake = FakeMsvcrt()
    monkeypatch.setattr(files, "fcntl", None)
    monkeypatch.setattr(files, "msvcrt", fake)
    path = tmp_path / ".lock"
    path.write_text("x" * 100)
    with open(path, "a") as first, open(path, "a") as second:  # "a" puts the position at the end
        lock_file(first)
        with pytest.raises(BlockingIOError):
            lock_file(second)
        unlock_file(first)
    assert {(mode, offset, n) for mode, offset, n in fake.calls} <= {(fake.LK_NBLCK, 0, 1), (fake.LK_UNLCK, 0, 1)}


def test_without_any_lock_primitive_it_warns_once_and_goes_on(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(files, "fcntl", None)
    monkeypatch.setattr(files, "msvcrt", None)
    monkeypatch.setattr(files, "_warned_no_locks", False)
    with caplog.at_level(logging.WARNING, logger="utils.files"), open(tmp_path / ".lock", "a") as a, open(tmp_path / ".lock", "a") as b:
        lock_file(a)
        lock_file(b)
        unlock_file(a)
        unlock_file(b)
    assert [r.getMessage() for r in caplog.records].count(
        "file locks are not available on this platform: do not run two writers on the same folder at once") == 1


@pytest.mark.skipif(files.fcntl is None, reason="POSIX only")
def test_the_lock_excludes_another_process_and_dies_with_it(tmp_path):
    path = tmp_path / ".lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys,time; from utils.files import lock_file; h=open(sys.argv[1],'a'); lock_file(h); print('held', flush=True); "
                               "time.sleep(60)", str(path)],
        cwd=REPO_DIR, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with open(path, "a") as mine:
            with pytest.raises(BlockingIOError):
                lock_file(mine)
            holder.kill()
            holder.wait()
            lock_file(mine)  # the killed holder left no stale lock
            unlock_file(mine)
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def test_no_module_imports_fcntl_directly():
    """Only utils/files.py may: anything else would stop the package from importing on Windows."""
    offenders = [
        str(p.relative_to(REPO_DIR)) for folder in ("utils", "model_size_calculation") for p in (REPO_DIR / folder).rglob("*.py")
        if p.name != "files.py" and any(line.strip().startswith(("import fcntl", "from fcntl")) for line in p.read_text(encoding="utf-8").splitlines())
    ]
    assert (REPO_DIR / "task1a.py").read_text(encoding="utf-8").count("import fcntl") == 0
    assert offenders == []


def test_file_digest_is_hashlib_over_the_whole_file(tmp_path):
    data = os.urandom(3 * (1 << 20) + 5)  # several blocks and a remainder
    (tmp_path / "f").write_bytes(data)
    assert files.file_digest(tmp_path / "f") == hashlib.sha256(data).hexdigest()
    assert files.file_digest(tmp_path / "f", "md5") == hashlib.md5(data).hexdigest()
    seen = []
    hasher = files.update_digest(hashlib.md5(b"prefix"), tmp_path / "f", on_block=seen.append)
    assert hasher.hexdigest() == hashlib.md5(b"prefix" + data).hexdigest() and sum(seen) == len(data) and len(seen) == 4


def test_usable_cores_honours_the_affinity_mask():
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert files.usable_cores() == expected >= 1
    assert worker_count(-1) == expected and worker_count(3) == 3  # the one reading of "-1 = all cores"
