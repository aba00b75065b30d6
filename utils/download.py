"""Fetching the TAU Urban Acoustic Scenes datasets as published: resumable, verified, atomic.

Owns ``python -m utils.download PATH`` (``task1a.py --download_dataset PATH`` calls
:func:`download_dataset`). The archive parts, their sizes and MD5 checksums come from the manifest
``utils/tau2022_manifest.yaml``. What a participant meets with 30 GB of archives is handled so that
no work is lost and nothing wrong is left looking right:

- each part is downloaded into ``PATH/archives/<file>.part`` and resumed with an HTTP ``Range``
  request after a broken connection (within the run, up to ``retries`` times in a row without
  progress, and across runs); a server that ignores ``Range`` restarts that part from byte 0;
- a finished part is checked against its published size and MD5 before it is renamed into
  place; a mismatch deletes it and raises one line saying to rerun. Verified parts are recorded
  (size, mtime, MD5) in ``PATH/archives/.verified.json`` so a rerun neither fetches nor re-hashes
  them;
- the parts of a set are extracted into a hidden staging folder ``PATH/.<folder>.extracting``
  (resumed part by part), the official layout is checked (``utils.dataset.check_dataset`` with
  audio), a completion marker is written, and only then the folder is renamed to
  ``PATH/<folder>`` in one atomic step. A folder there is therefore always complete;
- a lock (``PATH/.download.lock``) keeps two runs from writing the same files.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import sys
import time
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator
from urllib.error import HTTPError, URLError

import yaml
from tqdm import tqdm

from utils import cli
from utils import dataset as tau_dataset
from utils.errors import Task1aError, run_cli
from utils.files import file_digest, lock_file, unlock_file, update_digest, write_json_atomic
from utils.paths import packaged_file

log = logging.getLogger(__name__)

DEFAULT_MANIFEST = "tau2022_manifest.yaml"  # shipped with the package (utils.paths.packaged_file)
ARCHIVES_FOLDER = "archives"            # PATH/archives holds the downloaded zip parts
VERIFIED_STATE = ".verified.json"       # in the archives folder: parts whose MD5 was checked
EXTRACTED_STATE = ".extracted_parts.json"  # in a staging folder: parts already extracted
COMPLETE_MARKER = ".download_complete.json"  # in a dataset folder: written last, before the rename
LOCK_FILE = ".download.lock"            # in PATH: held while a download runs
PARTIAL_SUFFIX = ".part"
CHUNK_BYTES = 1 << 20                   # read/hash granularity (memory use, not behaviour)
USER_AGENT = "dcase-task1a-baseline-downloader (python urllib)"

RELEASE_KINDS = ("development", "evaluation")

DEFAULT_RETRIES = 5          # retries of a part after failed attempts in a row without progress
DEFAULT_RETRY_WAIT_S = 2.0   # wait before retry n is n * this
DEFAULT_TIMEOUT_S = 60.0     # socket timeout of one request


@dataclass(frozen=True)
class ArchivePart:
    """One published archive file: name, size in bytes and MD5 (``None`` where not published)."""

    file: str
    bytes: int | None
    md5: str | None


@dataclass(frozen=True)
class DatasetRelease:
    """One published dataset (a zenodo record): where its parts are and what they extract to."""

    name: str
    kind: str  # development | evaluation: which layout (and final check) applies
    title: str
    url: str | None  # None: the archive list is not known here (the set's folder and layout are)
    folder: str
    layout: tuple[str, ...]
    parts: tuple[ArchivePart, ...]


# --------------------------------------------------------------------------------------------
# Manifest
# --------------------------------------------------------------------------------------------

def load_manifest(path: str | os.PathLike | None = None) -> dict[str, DatasetRelease]:
    """Read and validate a manifest file; return ``{set name: DatasetRelease}``."""
    path = Path(path) if path is not None else packaged_file(DEFAULT_MANIFEST)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise Task1aError(f"cannot read the download manifest {path}: {exc.strerror}; give an existing file") from exc
    except yaml.YAMLError as exc:
        raise Task1aError(f"download manifest {path} is not valid YAML ({' '.join(str(exc).split())}); fix the file") from exc
    sets = data.get("sets") if isinstance(data, dict) else None
    if not isinstance(sets, dict) or not sets:
        raise Task1aError(f"download manifest {path} has no 'sets' mapping; see utils/tau2022_manifest.yaml for the format")
    return {name: _release_from_manifest(path, name, entry) for name, entry in sets.items()}


def _release_from_manifest(path: Path, name: str, entry: Any) -> DatasetRelease:
    where = f"download manifest {path}, sets.{name}"
    if not isinstance(entry, dict):
        raise Task1aError(f"{where} must be a mapping with url, folder, layout and parts; fix the file")
    for key in ("folder",) + (("url", "parts") if entry.get("url") is not None or entry.get("parts") else ()):
        if not entry.get(key):
            raise Task1aError(f"{where} lacks '{key}'; add it")
    folder = str(entry["folder"])
    if Path(folder).name != folder or folder in (".", ".."):
        raise Task1aError(f"{where}.folder must be a plain folder name, got {folder!r}; fix the file")
    parts = []
    for index, item in enumerate(entry.get("parts") or ()):
        at = f"{where}.parts[{index}]"
        if not isinstance(item, dict) or not item.get("file"):
            raise Task1aError(f"{at} must be a mapping with file, bytes and md5; fix the file")
        file = str(item["file"])
        if Path(file).name != file:
            raise Task1aError(f"{at}.file must be a plain file name, got {file!r}; fix the file")
        size = item.get("bytes")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise Task1aError(f"{at}.bytes must be a byte count or null, got {size!r}; fix the file")
        md5 = item.get("md5")
        if md5 is not None and not re.fullmatch(r"[0-9a-f]{32}", str(md5)):
            raise Task1aError(f"{at}.md5 must be 32 lowercase hex digits or null, got {md5!r}; fix the file")
        parts.append(ArchivePart(file=file, bytes=size, md5=None if md5 is None else str(md5)))
    if len({part.file for part in parts}) != len(parts):
        raise Task1aError(f"{where}.parts lists a file twice; fix the file")
    kind = str(entry.get("kind", name))
    if kind not in RELEASE_KINDS:
        raise Task1aError(f"{where}.kind must be one of {', '.join(RELEASE_KINDS)}, got {kind!r}; fix the file")
    return DatasetRelease(
        name=name,
        kind=kind,
        title=str(entry.get("title", name)),
        url=None if entry.get("url") is None else str(entry["url"]),
        folder=folder,
        layout=tuple(str(item) for item in entry.get("layout", ())),
        parts=tuple(parts),
    )


def part_url(base_url: str, part: ArchivePart) -> str:
    """The address of ``part`` under ``base_url`` (the folder the archive files are in)."""
    return base_url.rstrip("/") + "/" + urllib.parse.quote(part.file)


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------

def download_dataset(
    target_dir: str | os.PathLike,
    which: str | Iterable[str] = ("development",),
    base_url: str | None = None,
    manifest: str | os.PathLike | None = None,
    progress: bool = True,
    *,
    keep_archives: bool = False,
    retries: int = DEFAULT_RETRIES,
    retry_wait_s: float = DEFAULT_RETRY_WAIT_S,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> dict[str, dict[str, Any]]:
    """Download, verify and extract the datasets ``which`` into ``target_dir``; rerun to resume.

    ``target_dir`` is the folder datasets live in (``path.datasets`` in task1a.yaml); each set ends
    up in ``target_dir/<folder>`` (e.g. ``TAU-urban-acoustic-scenes-2022-mobile-development``).
    ``base_url`` replaces the manifest's server folder (a mirror). Archives are deleted once their
    set is complete unless ``keep_archives``.

    Returns ``{set name: {"path", "already_complete", "downloaded_bytes", "check"}}``, where
    ``check`` is what the final dataset check returned.
    """
    target_dir = Path(target_dir)
    releases = load_manifest(manifest)
    names = [which] if isinstance(which, str) else list(which)
    if not names:
        raise Task1aError("no dataset chosen to download; choose from " + ", ".join(releases))
    unknown = [name for name in names if name not in releases]
    if unknown:
        raise Task1aError(f"unknown dataset {unknown[0]!r} to download; choose from {', '.join(releases)}")
    if base_url is not None and urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):
        raise Task1aError(f"--base-url {base_url!r} is not an http(s) address; give e.g. https://zenodo.org/records/6337421/files")
    if not isinstance(retries, int) or retries < 0:
        raise Task1aError(f"retries must be a whole number >= 0, got {retries!r}")
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Task1aError(f"cannot create the dataset folder {target_dir}: {exc.strerror}; choose a writable PATH") from exc

    archives_dir = target_dir / ARCHIVES_FOLDER
    results = {}
    for name in names:
        if releases[name].url is None and base_url is None:
            raise Task1aError(f"{releases[name].title}: its archive list and checksums were not found published, so the manifest has no "
                              f"download for it; download it from its DCASE task page and extract it to {target_dir / releases[name].folder}")
    with _exclusive_lock(target_dir):
        for name in dict.fromkeys(names):  # in the order given, each once
            release = releases[name]
            results[name] = _install_release(
                release, target_dir, archives_dir, base_url or release.url,
                progress=progress, keep_archives=keep_archives,
                retries=retries, retry_wait_s=retry_wait_s, timeout_s=timeout_s,
            )
    return results


@contextlib.contextmanager
def _exclusive_lock(target_dir: Path) -> Iterator[None]:
    """Hold ``target_dir/.download.lock`` so that two runs never write the same partial files.

    An advisory lock (:func:`utils.files.lock_file`: ``flock`` on POSIX, ``msvcrt.locking`` on
    Windows): the operating system drops it when the process dies, so a killed run never leaves a
    stale lock behind.
    """
    lock_path = target_dir / LOCK_FILE
    try:
        handle = open(lock_path, "a")
    except OSError as exc:
        raise Task1aError(f"cannot write {lock_path}: {exc.strerror}; choose a writable PATH") from exc
    with handle:
        try:
            lock_file(handle)
        except OSError as exc:
            raise Task1aError(f"another download into {target_dir} is running (it holds {lock_path}); "
                              "wait for it to finish or stop it, then rerun") from exc
        try:
            yield
        finally:
            unlock_file(handle)


def _install_release(release: DatasetRelease, target_dir: Path, archives_dir: Path, base_url: str, *,
                     progress: bool, keep_archives: bool, retries: int, retry_wait_s: float,
                     timeout_s: float) -> dict[str, Any]:
    final_dir = target_dir / release.folder
    staging_root = _staging_root(target_dir, release)
    if (final_dir / COMPLETE_MARKER).is_file():
        log.info("%s: already complete in %s", release.name, final_dir)
        shutil.rmtree(staging_root, ignore_errors=True)  # a run killed right after the rename
        return {"path": str(final_dir), "already_complete": True, "downloaded_bytes": 0, "check": None}
    if final_dir.exists():
        raise Task1aError(
            f"{final_dir} exists but was not left by a complete download (no {COMPLETE_MARKER}); "
            f"if it is a complete copy, check it with `python -m utils.dataset {final_dir} --check-audio`, "
            "otherwise delete it and rerun")

    verified = _VerifiedArchives(archives_dir)
    _check_free_space(release, target_dir, archives_dir, verified, extracting=staging_root.exists())

    log.info("%s: %s, %d archive parts from %s", release.name, release.title, len(release.parts), base_url)
    downloaded = 0
    for part in release.parts:
        downloaded += fetch_part(
            part_url(base_url, part), archives_dir, part, verified,
            progress=progress, retries=retries, retry_wait_s=retry_wait_s, timeout_s=timeout_s,
        )

    report = _extract_release(release, archives_dir, target_dir, verified, progress=progress)

    if not keep_archives:
        for part in release.parts:
            (archives_dir / part.file).unlink(missing_ok=True)
            verified.forget(part.file)
        _remove_if_empty(archives_dir)
    return {"path": str(final_dir), "already_complete": False, "downloaded_bytes": downloaded, "check": report}


def _staging_root(target_dir: Path, release: DatasetRelease) -> Path:
    return target_dir / f".{release.folder}.extracting"


def _check_free_space(release: DatasetRelease, target_dir: Path, archives_dir: Path,
                      verified: "_VerifiedArchives", *, extracting: bool) -> None:
    """Refuse to start when the disk cannot hold what is still to come (known sizes only).

    The extracted audio is at least as large as its archives (WAV barely compresses), so the
    archive sizes are a lower bound for the extraction too, unless extraction already started.
    """
    remaining = 0
    for part in release.parts:
        if part.bytes is None or verified.matches(archives_dir / part.file, part):
            continue
        partial = archives_dir / (part.file + PARTIAL_SUFFIX)
        remaining += part.bytes - (partial.stat().st_size if partial.is_file() else 0)
    if not extracting:
        remaining += sum(part.bytes for part in release.parts if part.bytes is not None)
    free = shutil.disk_usage(target_dir).free
    if remaining > free:
        raise Task1aError(
            f"{target_dir} has {free / 1e9:.1f} GB free but the {release.name} set needs at least "
            f"{remaining / 1e9:.1f} GB more (archives and extracted audio); free disk space or choose another PATH")


# --------------------------------------------------------------------------------------------
# Downloading one part
# --------------------------------------------------------------------------------------------

class _VerifiedArchives:
    """The archives whose size and MD5 were checked, keyed by file name, with size and mtime.

    A rerun trusts an archive whose size and mtime are unchanged instead of re-hashing 30 GB.
    """

    def __init__(self, archives_dir: Path):
        self.path = archives_dir / VERIFIED_STATE
        try:
            entries = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            entries = {}  # no state (or an unreadable one): archives are simply hashed again
        self.entries = entries if isinstance(entries, dict) else {}

    def matches(self, path: Path, part: ArchivePart) -> bool:
        entry = self.entries.get(part.file)
        try:
            stat = path.stat()
        except OSError:
            return False
        return (isinstance(entry, dict) and entry.get("bytes") == stat.st_size
                and entry.get("mtime_ns") == stat.st_mtime_ns
                and (part.md5 is None or entry.get("md5") == part.md5))

    def record(self, path: Path, part: ArchivePart, md5: str) -> None:
        stat = path.stat()
        self.entries[part.file] = {"bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns, "md5": md5}
        write_json_atomic(self.path, self.entries)

    def forget(self, file: str) -> None:
        if self.entries.pop(file, None) is not None:
            if self.entries:
                write_json_atomic(self.path, self.entries)
            else:
                self.path.unlink(missing_ok=True)


def fetch_part(url: str, archives_dir: Path, part: ArchivePart, verified: _VerifiedArchives, *,
               progress: bool = True, retries: int = DEFAULT_RETRIES,
               retry_wait_s: float = DEFAULT_RETRY_WAIT_S, timeout_s: float = DEFAULT_TIMEOUT_S) -> int:
    """Make ``archives_dir/part.file`` a verified copy of ``url``; return the bytes downloaded."""
    final = archives_dir / part.file
    if verified.matches(final, part):
        log.info("%s: verified earlier, not fetched again", part.file)
        return 0
    if final.is_file():
        # Present but not recorded (placed by hand, or the state file was lost): hash it once.
        md5 = _md5_of_file(final, progress=progress)
        if _matches_publication(final.stat().st_size, md5, part):
            verified.record(final, part, md5)
            log.info("%s: present and verified, not fetched again", part.file)
            return 0
        log.warning("%s: present but its size or MD5 differs from the published one; downloading it again", part.file)
        final.unlink()

    partial = archives_dir / (part.file + PARTIAL_SUFFIX)
    try:
        archives_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Task1aError(f"cannot create {archives_dir}: {exc.strerror}; choose a writable PATH") from exc
    md5, size, downloaded = _download_resumable(url, partial, part.bytes, label=part.file, progress=progress,
                                                retries=retries, retry_wait_s=retry_wait_s, timeout_s=timeout_s)
    if part.bytes is not None and size != part.bytes:
        partial.unlink(missing_ok=True)
        raise Task1aError(f"{part.file} from {url} has {size} bytes, the published size is {part.bytes}; "
                          "the download was deleted, rerun to fetch it again")
    if part.md5 is not None and md5 != part.md5:
        partial.unlink(missing_ok=True)
        raise Task1aError(f"checksum mismatch for {part.file} from {url}: MD5 {md5}, published {part.md5}; "
                          "the corrupt download was deleted, rerun to fetch it again")
    os.replace(partial, final)
    verified.record(final, part, md5)
    return downloaded


def _matches_publication(size: int, md5: str, part: ArchivePart) -> bool:
    return (part.bytes is None or size == part.bytes) and (part.md5 is None or md5 == part.md5)


def _md5_of_file(path: Path, *, progress: bool = False) -> str:
    """MD5 hex digest of the file at ``path``."""
    return _update_md5(hashlib.md5(), path, progress=progress).hexdigest()


def _update_md5(hasher, path: Path, *, progress: bool):
    """Feed the bytes of ``path`` to ``hasher`` (a hashlib object); return it."""
    with tqdm(total=path.stat().st_size, unit="B", unit_scale=True, unit_divisor=1024, desc=f"verify {path.name}",
              leave=False, disable=None if progress else True) as bar:
        return update_digest(hasher, path, on_block=bar.update)


class _Interrupted(Exception):
    """A transfer that stopped early for a reason a retry may cure (network, server 5xx)."""


class _PartialDownload:
    """The bytes of one part received so far: the ``.part`` file, its size and running MD5.

    The MD5 is updated as bytes arrive (and computed over the kept bytes when resuming), so a
    finished part is verified without reading it again.
    """

    def __init__(self, path: Path, expected_bytes: int | None, label: str, *, progress: bool):
        self.path = path
        self.expected_bytes = expected_bytes
        self.label = label
        self.offset = path.stat().st_size if path.is_file() else 0
        self.appended = 0  # bytes appended in this run, over all attempts (to tell progress)
        if expected_bytes is not None and self.offset > expected_bytes:
            log.warning("%s: the partial download is longer than the published file; starting it again", label)
            path.unlink()
            self.offset = 0
        self.hasher = hashlib.md5()
        if self.offset:
            _update_md5(self.hasher, path, progress=progress)
        self.bar = tqdm(total=expected_bytes, initial=self.offset, unit="B", unit_scale=True,
                        unit_divisor=1024, desc=label, disable=None if progress else True)

    @property
    def complete(self) -> bool:
        return self.expected_bytes is not None and self.offset == self.expected_bytes

    def restart(self, reason: str) -> None:
        """Drop the kept bytes: the server cannot continue from them."""
        log.warning("%s: %s; starting this part again from byte 0", self.label, reason)
        self.path.unlink(missing_ok=True)
        self.offset = 0
        self.hasher = hashlib.md5()
        self.bar.reset(total=self.expected_bytes)

    def append_from(self, response) -> int:
        """Append the response body; return the bytes appended (raise _Interrupted on a break)."""
        received = 0
        try:
            handle = open(self.path, "ab" if self.offset else "wb")
        except OSError as exc:
            raise Task1aError(f"cannot write {self.path}: {exc.strerror}; choose a writable PATH") from exc
        with handle:
            while True:
                try:
                    chunk = response.read(CHUNK_BYTES)
                except (OSError, http.client.HTTPException) as exc:
                    raise _Interrupted(f"connection broken ({type(exc).__name__}: {exc})") from exc
                if not chunk:
                    return received
                try:
                    handle.write(chunk)
                    handle.flush()  # the file holds what the hasher saw: a resume continues right after it
                except OSError as exc:
                    raise Task1aError(f"cannot write {self.path}: {exc.strerror}; free disk space and rerun "
                                      f"(the download resumes from byte {self.offset})") from exc
                self.hasher.update(chunk)
                self.offset += len(chunk)
                self.appended += len(chunk)
                received += len(chunk)
                self.bar.update(len(chunk))


def _download_resumable(url: str, partial: Path, expected_bytes: int | None, *, label: str,
                        progress: bool, retries: int, retry_wait_s: float,
                        timeout_s: float) -> tuple[str, int, int]:
    """Complete ``partial`` from ``url``, resuming at its current size.

    Returns (MD5, size, bytes downloaded in this run).

    Retries up to ``retries`` times after a failed attempt; an attempt that received bytes
    before failing restarts that count, so a flaky connection still finishes while a dead one
    stops (``retries=0``: one attempt, the kept bytes wait for a rerun).
    """
    download = _PartialDownload(partial, expected_bytes, label, progress=progress)
    failures = 0
    with download.bar:
        while not download.complete:
            appended_before = download.appended
            try:
                _transfer(url, download, timeout_s=timeout_s)
                break
            except _Interrupted as interruption:
                reason = str(interruption)
            failures = 1 if download.appended > appended_before else failures + 1
            if failures > retries:
                kept = (f"{download.offset} bytes are kept in {partial}: rerun to resume" if download.offset
                        else "nothing was received: check the network (or --base-url) and rerun")
                times = "once" if failures == 1 else f"{failures} times in a row"
                raise Task1aError(f"download of {url} failed {times} ({reason}); {kept}")
            log.warning("%s: %s at byte %d; retrying", label, reason, download.offset)
            time.sleep(retry_wait_s * max(failures, 1))
    return download.hasher.hexdigest(), download.offset, download.appended


_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)")


def _transfer(url: str, download: _PartialDownload, *, timeout_s: float) -> None:
    """One request for the bytes after ``download.offset``, appended to the partial file.

    Raises :class:`_Interrupted` when a retry may help (broken connection, HTTP 5xx), and
    :class:`Task1aError` when it cannot (404...). A server that cannot continue from the kept
    bytes makes the part restart from byte 0.
    """
    offset = download.offset
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)
    except HTTPError as exc:
        if exc.code == 416 and offset:
            match = _CONTENT_RANGE.match(exc.headers.get("Content-Range", "") or "")
            if match and match.group(3) == str(offset):
                return  # nothing after offset: the kept bytes are the whole file
            download.restart(f"the server refused to resume at byte {offset} (HTTP 416)")
            raise _Interrupted("HTTP 416 Range Not Satisfiable") from exc
        if exc.code in (408, 429) or exc.code >= 500:
            raise _Interrupted(f"HTTP {exc.code} {exc.reason}") from exc
        raise Task1aError(f"cannot download {url}: HTTP {exc.code} {exc.reason}; "
                          "check the address (--base-url) or the download manifest") from exc
    except ValueError as exc:  # urllib's answer to a malformed address
        raise Task1aError(f"cannot download {url}: {exc}; check the address (--base-url)") from exc
    except (URLError, OSError, http.client.HTTPException) as exc:
        raise _Interrupted(f"cannot connect: {getattr(exc, 'reason', None) or exc}") from exc

    with response:
        if offset:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", "") or "")
            if response.status != 206:
                download.restart(f"the server ignored the range request (HTTP {response.status})")
            elif not match or match.group(1) is None or int(match.group(1)) != offset:
                download.restart(f"the server answered range {response.headers.get('Content-Range')!r} "
                                 f"to a request from byte {offset}")
                raise _Interrupted("wrong range in the answer")
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if download.expected_bytes is None and length is not None:
            download.bar.total = download.offset + length  # size not published: the server's
            download.bar.refresh()
        received = download.append_from(response)
        # urllib returns b"" when the server closes early, without an error: compare with the
        # announced length ourselves.
        if length is not None and received < length:
            raise _Interrupted(f"connection closed after {received} of {length} bytes")


# --------------------------------------------------------------------------------------------
# Extraction and the final check
# --------------------------------------------------------------------------------------------

def _extract_release(release: DatasetRelease, archives_dir: Path, target_dir: Path,
                     verified: _VerifiedArchives, *, progress: bool) -> Any:
    """Extract all parts into the staging folder, check it, mark it complete, move it in place."""
    staging_root = _staging_root(target_dir, release)
    done_path = staging_root / EXTRACTED_STATE
    try:
        done = set(json.loads(done_path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        done = set()
    for part in release.parts:
        if part.file in done:
            continue
        archive = archives_dir / part.file
        _extract_archive(archive, staging_root, release.folder, progress=progress, verified=verified, part=part)
        done.add(part.file)
        write_json_atomic(done_path, sorted(done))

    dataset_path = staging_root / release.folder
    missing = [entry for entry in release.layout if not (dataset_path / entry).exists()]
    if missing:
        raise Task1aError(
            f"after extracting the {release.name} archives, {dataset_path} lacks {', '.join(missing)}; "
            f"the archives do not match the manifest: delete {staging_root} and {archives_dir} and rerun")
    report = check_extracted_dataset(dataset_path, release.kind)
    write_json_atomic(dataset_path / COMPLETE_MARKER, {
        "set": release.name,
        "title": release.title,
        "parts": [{"file": part.file, "md5": verified.entries.get(part.file, {}).get("md5", part.md5)}
                  for part in release.parts],
    })
    final_dir = target_dir / release.folder
    try:
        os.replace(dataset_path, final_dir)
    except OSError as exc:
        raise Task1aError(f"cannot move {dataset_path} to {final_dir}: {exc.strerror}; "
                          f"remove {final_dir} and rerun") from exc
    shutil.rmtree(staging_root, ignore_errors=True)
    log.info("%s: complete in %s", release.name, final_dir)
    return report


def _extract_archive(archive: Path, staging_root: Path, folder: str, *, progress: bool,
                     verified: _VerifiedArchives, part: ArchivePart) -> None:
    """Extract ``archive`` so that its content lands in ``staging_root/folder``.

    The official archives hold ``folder/...``; an archive without that top folder is extracted
    into it. zipfile drops absolute paths and ``..``, so nothing lands outside the staging folder.
    A corrupt archive is deleted (with its verification record) so that a rerun fetches it again.
    """
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = bundle.infolist()
            inside_folder = all(m.filename.startswith(folder + "/") for m in members)
            destination = staging_root if inside_folder else staging_root / folder
            with tqdm(total=sum(m.file_size for m in members), unit="B", unit_scale=True, unit_divisor=1024,
                      desc=f"extract {archive.name}", disable=None if progress else True) as bar:
                for member in members:
                    bundle.extract(member, destination)
                    bar.update(member.file_size)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        archive.unlink(missing_ok=True)
        verified.forget(part.file)
        raise Task1aError(f"archive {archive} is corrupt ({exc}); it was deleted, rerun to download it again") from exc
    except OSError as exc:
        raise Task1aError(f"cannot extract {archive} into {staging_root}: {exc.strerror}; "
                          "free disk space and rerun (extraction resumes)") from exc


def check_extracted_dataset(path: Path, kind: str) -> dict:
    """The final check of an extracted set, as ``python -m utils.dataset PATH --check-audio`` does it.

    ``kind`` ``development``: :func:`utils.dataset.check_dataset` with the audio check (metadata,
    folds, split, every listed file readable); ``evaluation``: ``fold1_test.csv`` and its audio files.
    Missing or unreadable audio raises; the set is then not marked complete.
    """
    if kind == "development":
        report = tau_dataset.check_dataset(path, check_audio=True)
    else:
        evaluation = tau_dataset.TAUEvaluationSet.load(path)
        report = {"test": {"count": int(len(evaluation.test))},
                  "audio": tau_dataset.check_audio_files(path, list(evaluation.test["filename"]))}
    audio = report["audio"]
    bad = [f"{audio[problem]['count']} {problem} (first: {', '.join(audio[problem]['first'])})"
           for problem in ("missing", "unreadable") if audio[problem]["count"]]
    if bad:
        raise Task1aError(f"the extracted dataset {path} is not complete: of {audio['checked']} listed audio files, "
                          f"{'; '.join(bad)}; it was not marked complete: inspect it with "
                          f"`python -m utils.dataset {path} --check-audio`, then delete {path.parent} and rerun")
    return report


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty (other sets' archives) or already gone


# --------------------------------------------------------------------------------------------
# The official baseline model (the `baseline_inference` energy figure)
# --------------------------------------------------------------------------------------------

# The official DCASE2022/2023 Task 1 baseline's model file, in its repository at a fixed commit. It is
# not shipped with this project (no licence is given for it); its sha256 is the one tests and the
# recognizer check (utils.stages.OFFICIAL_MODEL_SHA256).
BASELINE_MODEL = {
    "file": "model_task1.tflite",
    "url": "https://raw.githubusercontent.com/marmoi/dcase2022_task1_baseline/5d1ad918bbefc481a11163b2f90ef42c83d674fe/model_task1.tflite",
    "repository": "https://github.com/marmoi/dcase2022_task1_baseline",
    "bytes": 52424,
    "sha256": "c627fe9cab07709750072d3ba39a2944a3a33b5a63e2dda97195406fde5cfd9b",
}


def download_baseline_model(target: str | os.PathLike, url: str | None = None, *, progress: bool = True,
                            retries: int = DEFAULT_RETRIES, retry_wait_s: float = DEFAULT_RETRY_WAIT_S,
                            timeout_s: float = DEFAULT_TIMEOUT_S) -> Path:
    """Fetch the official baseline model to ``target`` (a file path), verified by size and sha256.

    A file already there with the right checksum is kept; one with another checksum is an error (it
    is not replaced without asking). ``url`` replaces the official address (a mirror). The file
    appears at ``target`` only once verified (``target.part`` meanwhile, resumed by a rerun).
    """
    target = Path(target)
    url = url or BASELINE_MODEL["url"]
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise Task1aError(f"baseline model address {url!r} is not an http(s) address; give e.g. {BASELINE_MODEL['url']}")
    if target.is_dir():
        target = target / BASELINE_MODEL["file"]
    if target.is_file():
        sha = file_digest(target)
        if sha == BASELINE_MODEL["sha256"]:
            log.info("baseline model: %s is already there and verified", target)
            return target
        raise Task1aError(f"{target} exists but is not the official baseline model (sha256 {sha[:12]}...); "
                          "move it away and rerun (recognizer.baseline_model names where the model goes)")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Task1aError(f"cannot create {target.parent}: {exc.strerror}; choose a writable recognizer.baseline_model") from exc
    partial = target.with_name(target.name + PARTIAL_SUFFIX)
    _, size, _ = _download_resumable(url, partial, BASELINE_MODEL["bytes"], label=target.name, progress=progress,
                                     retries=retries, retry_wait_s=retry_wait_s, timeout_s=timeout_s)
    sha = file_digest(partial)
    if size != BASELINE_MODEL["bytes"] or sha != BASELINE_MODEL["sha256"]:
        partial.unlink(missing_ok=True)
        raise Task1aError(f"the baseline model from {url} does not match the official file "
                          f"({size} bytes, sha256 {sha[:12]}...; expected {BASELINE_MODEL['bytes']} bytes, "
                          f"sha256 {BASELINE_MODEL['sha256'][:12]}...); the download was deleted, rerun to fetch it again")
    os.replace(partial, target)
    log.info("baseline model: %s (%d bytes, sha256 verified)", target, size)
    return target


# --------------------------------------------------------------------------------------------
# DCASE2024 training subsets (split files)
# --------------------------------------------------------------------------------------------

TRAIN_SPLITS_SECTION = "train_splits"   # the manifest's section listing split{N}.csv
DOWNLOADABLE_SPLITS = (5, 10, 25, 50)   # 100 is fold1_train.csv itself


@dataclass(frozen=True)
class SplitFiles:
    """The published DCASE2024 split files: ``{percent: ArchivePart}``, the server folder, the dataset sub-folder."""

    title: str
    url: str | None  # None: the archive list is not known here (the set's folder and layout are)
    folder: str
    files: dict[int, ArchivePart]


def load_train_splits(path: str | os.PathLike | None = None) -> SplitFiles:
    """The ``train_splits`` section of a download manifest (default: the shipped one)."""
    path = Path(path) if path is not None else packaged_file(DEFAULT_MANIFEST)
    try:
        entry = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get(TRAIN_SPLITS_SECTION)
    except (OSError, yaml.YAMLError, AttributeError) as exc:
        raise Task1aError(f"cannot read {TRAIN_SPLITS_SECTION} from the download manifest {path} ({' '.join(str(exc).split())}); fix the file") from exc
    where = f"download manifest {path}, {TRAIN_SPLITS_SECTION}"
    if not isinstance(entry, dict) or not entry.get("url") or not isinstance(entry.get("files"), dict):
        raise Task1aError(f"{where} must be a mapping with url, folder and files; see utils/tau2022_manifest.yaml")
    folder = str(entry.get("folder", tau_dataset.SPLIT_FOLDER))
    if Path(folder).name != folder or folder in (".", ".."):
        raise Task1aError(f"{where}.folder must be a plain folder name, got {folder!r}; fix the file")
    files = {}
    for percent, item in entry["files"].items():
        if percent not in DOWNLOADABLE_SPLITS:
            raise Task1aError(f"{where}.files: unknown split {percent!r} (known: {', '.join(map(str, DOWNLOADABLE_SPLITS))}); fix the file")
        item = item if isinstance(item, dict) else {}
        file, size, md5 = str(item.get("file", "")), item.get("bytes"), str(item.get("md5", ""))
        sound = (file == tau_dataset.split_filename(percent) and isinstance(size, int) and not isinstance(size, bool)
                 and size > 0 and re.fullmatch(r"[0-9a-f]{32}", md5))
        if not sound:  # a split file is small and always published with its size and MD5
            raise Task1aError(f"{where}.files.{percent} must be {{file: {tau_dataset.split_filename(percent)}, bytes: N, md5: 32 hex digits}}, "
                              f"got {entry['files'][percent]!r}; fix the file")
        files[percent] = ArchivePart(file=file, bytes=size, md5=md5)
    return SplitFiles(title=str(entry.get("title", TRAIN_SPLITS_SECTION)), url=str(entry["url"]), folder=folder, files=files)


def download_train_splits(
    dataset_dir: str | os.PathLike,
    splits: Iterable[int] = DOWNLOADABLE_SPLITS,
    base_url: str | None = None,
    manifest: str | os.PathLike | None = None,
    progress: bool = True,
    *,
    retries: int = DEFAULT_RETRIES,
    retry_wait_s: float = DEFAULT_RETRY_WAIT_S,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> dict[int, dict[str, Any]]:
    """Fetch the DCASE2024 ``split{N}.csv`` files into ``dataset_dir/split_setup/``, verified.

    ``dataset_dir`` is the development-set folder (the one with ``meta.csv``). A file already there
    with the published size and MD5 is kept; a different one is replaced. Each file is downloaded to
    ``<file>.part`` (resumed on a broken connection), checked, then renamed into place.

    Returns ``{percent: {"path", "downloaded_bytes"}}``.
    """
    dataset_dir = Path(dataset_dir)
    published = load_train_splits(manifest)
    wanted = list(dict.fromkeys(splits))
    unknown = [percent for percent in wanted if percent not in published.files]
    if unknown:
        raise Task1aError(f"no split file {unknown[0]!r} to download; choose from {', '.join(map(str, published.files))} (100 is fold1_train.csv itself)")
    if base_url is not None and urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):
        raise Task1aError(f"--base-url {base_url!r} is not an http(s) address; give e.g. {published.url}")
    if not (dataset_dir / tau_dataset.META_FILENAME).is_file():
        raise Task1aError(f"{dataset_dir} has no {tau_dataset.META_FILENAME}; give the development-set folder "
                          f"(download it first: python -m utils.download {dataset_dir.parent})")
    split_dir = dataset_dir / published.folder
    try:
        split_dir.mkdir(exist_ok=True)
    except OSError as exc:
        raise Task1aError(f"cannot create {split_dir}: {exc.strerror}; make the dataset folder writable") from exc
    results = {}
    with _exclusive_lock(split_dir):
        for percent in wanted:
            part = published.files[percent]
            final = split_dir / part.file
            downloaded = 0
            if not (final.is_file() and _matches_publication(final.stat().st_size, _md5_of_file(final), part)):
                if final.is_file():
                    log.warning("%s: its size or MD5 differs from the published one; downloading it again", final)
                url = part_url(base_url or published.url, part)
                partial = split_dir / (part.file + PARTIAL_SUFFIX)
                md5, size, downloaded = _download_resumable(url, partial, part.bytes, label=part.file, progress=progress,
                                                            retries=retries, retry_wait_s=retry_wait_s, timeout_s=timeout_s)
                if not _matches_publication(size, md5, part):
                    partial.unlink(missing_ok=True)
                    raise Task1aError(f"checksum mismatch for {part.file} from {url}: {size} bytes, MD5 {md5}; published "
                                      f"{part.bytes} bytes, MD5 {part.md5}; the download was deleted, rerun to fetch it again")
                os.replace(partial, final)
            results[percent] = {"path": str(final), "downloaded_bytes": downloaded}
    return results


def _main_train_splits(args) -> int:
    """``python -m utils.download DEVELOPMENT_FOLDER --train-splits [N ...]``."""
    results = download_train_splits(args.path, args.train_splits or DOWNLOADABLE_SPLITS, base_url=args.base_url,
                                    manifest=args.manifest, progress=not args.no_progress, retries=args.retries)
    for percent, result in results.items():
        print(f"split{percent}: {result['path']}")
    return 0


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

def _evaluation_set(edition: int) -> str:
    """The manifest's set of ``edition``'s evaluation data (:attr:`utils.editions.base.Edition.evaluation_set`)."""
    from utils import editions

    return editions.get(edition).evaluation_set


def main(argv: list[str] | None = None) -> int:
    parser = cli.ArgumentParser(
        prog=cli.prog("utils.download"),
        description="Download, verify and extract the TAU Urban Acoustic Scenes 2022 Mobile development set "
                    "(and the DCASE2023 evaluation set) into PATH. Rerun the same command to resume.")
    parser.add_argument("path", help="folder the datasets go into (path.datasets in task1a.yaml, e.g. datasets)")
    parser.add_argument("--evaluation", nargs="?", type=int, const=2023, default=None, metavar="EDITION",
                        help="also the evaluation set of a DCASE edition: 2023 (the default; TAU Urban Acoustic Scenes 2023 Mobile "
                             "evaluation), 2024 or 2025 (their own evaluation sets)")
    parser.add_argument("--base-url", help="folder on another server holding the archive files (a mirror)")
    parser.add_argument("--manifest", help=f"archive list with sizes and MD5s (default: the shipped {DEFAULT_MANIFEST})")
    parser.add_argument("--keep-archives", action="store_true", help="keep the zip files after extraction")
    parser.add_argument("--retries", type=int, default=DEFAULT_RETRIES,
                        help="retries of a part after failed attempts in a row that received nothing "
                             "(default %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--train-splits", "--train_splits", nargs="*", type=int, choices=DOWNLOADABLE_SPLITS, metavar="N",
                        help="only the DCASE2024 training-subset files split{N}.csv (N of 5 10 25 50; none given: all) "
                             "into PATH/split_setup; PATH is then the development-set folder")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    which = ("development", _evaluation_set(args.evaluation)) if args.evaluation is not None else ("development",)
    if args.train_splits is not None:
        return run_cli(lambda: _main_train_splits(args), args.debug)
    results = {}

    def download() -> int:
        results.update(download_dataset(args.path, which=which, base_url=args.base_url, manifest=args.manifest,
                                        progress=not args.no_progress, keep_archives=args.keep_archives, retries=args.retries))
        return 0

    status = run_cli(download, args.debug)
    if status:
        return status
    for name, result in results.items():
        print(f"{name}: {result['path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
