"""utils.download against a local HTTP server on 127.0.0.1 that can misbehave on demand.

The server serves small archive parts built here (a tiny dataset in the official layout: doc,
meta and two audio zips of real 44.1 kHz 24-bit WAV files) and logs every request with its Range
header, so resumption is checked on the server side. No test touches the internet.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

from utils import download
from utils.dataset import SCENE_LABELS
from utils.download import ARCHIVES_FOLDER, COMPLETE_MARKER, download_dataset, load_manifest
from utils.errors import Task1aError
from utils.files import lock_file

FOLDER = "TAU-urban-acoustic-scenes-2022-mobile-development"
SAMPLE_RATE = 44100
DOC, META, AUDIO1, AUDIO2 = (f"{FOLDER}.{kind}.zip" for kind in ("doc", "meta", "audio.1", "audio.2"))
PARTS = (DOC, META, AUDIO1, AUDIO2)
EVALUATION_FOLDER = "TAU-urban-acoustic-scenes-2023-mobile-evaluation"


# ------------------------------------------------------------------------------------------
# The tiny dataset and its archives
# ------------------------------------------------------------------------------------------

def _wav_bytes(seed: int) -> bytes:
    signal = np.random.default_rng(seed).uniform(-0.5, 0.5, SAMPLE_RATE)
    buffer = io.BytesIO()
    soundfile.write(buffer, signal, SAMPLE_RATE, subtype="PCM_24", format="WAV")
    return buffer.getvalue()


def _zip(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return buffer.getvalue()


def _tiny_dataset(extra_listed: str | None = None) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """(archive name -> bytes, relative path in the dataset folder -> bytes)."""
    clips = {}
    meta_rows, train_rows, evaluate_rows = [], [], []
    for index, scene in enumerate(SCENE_LABELS):
        for device, rows in (("a", train_rows), ("b", evaluate_rows)):
            name = f"audio/{scene}-lisbon-{1000 + index}-{40000 + index}-0-{device}.wav"
            clips[name] = _wav_bytes(seed=2 * index + (device == "b"))
            meta_rows.append(f"{name}\t{scene}\tlisbon-{1000 + index}\t{device}")
            rows.append(f"{name}\t{scene}")
    if extra_listed:  # listed in the metadata, in no archive
        meta_rows.append(f"{extra_listed}\tpark\tlisbon-1004\ta")
        train_rows.append(f"{extra_listed}\tpark")
    metadata = {
        "meta.csv": "\n".join(["filename\tscene_label\tidentifier\tsource_label", *meta_rows]) + "\n",
        "evaluation_setup/fold1_train.csv": "\n".join(["filename\tscene_label", *train_rows]) + "\n",
        "evaluation_setup/fold1_evaluate.csv": "\n".join(["filename\tscene_label", *evaluate_rows]) + "\n",
        "evaluation_setup/fold1_test.csv": "\n".join(["filename", *(r.split("\t")[0] for r in evaluate_rows)]) + "\n",
    }
    contents = {name: text.encode() for name, text in metadata.items()}
    contents["README.md"] = b"# tiny stand-in for the TAU Urban Acoustic Scenes 2022 Mobile development set\n"
    contents.update(clips)
    clip_names = sorted(clips)
    half = len(clip_names) // 2
    archives = {
        DOC: _zip({f"{FOLDER}/README.md": contents["README.md"]}),
        META: _zip({f"{FOLDER}/{name}": data for name, data in contents.items() if name.endswith(".csv")}),
        AUDIO1: _zip({f"{FOLDER}/{name}": clips[name] for name in clip_names[:half]}, zipfile.ZIP_STORED),
        AUDIO2: _zip({f"{FOLDER}/{name}": clips[name] for name in clip_names[half:]}, zipfile.ZIP_STORED),
    }
    return archives, contents


@pytest.fixture(scope="module")
def tiny():
    return _tiny_dataset()


def _write_manifest(path: Path, archives: dict[str, bytes], unpublished: tuple[str, ...] = (),
                    evaluation: dict[str, bytes] | None = None) -> Path:
    """A manifest for ``archives`` (sizes and MD5s computed here); ``unpublished`` parts get nulls.

    ``evaluation`` archives form an evaluation set whose sizes are not published (as the real one).
    """
    parts = [{"file": name,
              "bytes": None if name in unpublished else len(data),
              "md5": None if name in unpublished else hashlib.md5(data).hexdigest()}
             for name, data in archives.items()]
    manifest = {"sets": {"development": {
        "kind": "development", "title": "tiny", "url": "http://127.0.0.1:9/unused",
        "folder": FOLDER, "layout": ["meta.csv", "evaluation_setup", "audio"], "parts": parts}}}
    if evaluation:
        manifest["sets"]["evaluation"] = {
            "kind": "evaluation", "title": "tiny evaluation", "url": "http://127.0.0.1:9/unused",
            "folder": EVALUATION_FOLDER, "layout": ["evaluation_setup/fold1_test.csv", "audio"],
            "parts": [{"file": name, "bytes": None, "md5": hashlib.md5(data).hexdigest()}
                      for name, data in evaluation.items()]}
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


# ------------------------------------------------------------------------------------------
# The misbehaving server
# ------------------------------------------------------------------------------------------

class FakeServer:
    """Serves ``files`` with Range support; switches make it break, lie, forget or ignore Range."""

    def __init__(self, files: dict[str, bytes]):
        self.files = dict(files)
        self.break_after: dict[str, int] = {}  # name -> close the connection after k body bytes (once)
        self.tampered: set[str] = set()        # names served with one byte flipped
        self.missing: set[str] = set()         # names answered with 404
        self.ignore_range = False
        self.log: list[tuple[str, str | None, int]] = []  # (name, Range header, status)
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                name = self.path.lstrip("/").split("?")[0]
                requested_range = self.headers.get("Range")
                if name in server.missing or name not in server.files:
                    server.record(name, requested_range, 404)
                    self.send_error(404)
                    return
                data = server.files[name]
                if name in server.tampered:
                    data = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
                start, status = 0, 200
                if requested_range and not server.ignore_range:
                    start = int(re.fullmatch(r"bytes=(\d+)-", requested_range).group(1))
                    if start >= len(data):
                        server.record(name, requested_range, 416)
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                body = data[start:]
                server.record(name, requested_range, status)
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                with server.lock:
                    cut = server.break_after.pop(name, None)
                self.wfile.write(body if cut is None else body[:cut])
                self.wfile.flush()
                # HTTP/1.0: the connection closes when the handler returns, so a cut body is a
                # connection closed midway.

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/files"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def record(self, name, requested_range, status):
        with self.lock:
            self.log.append((name.split("/")[-1], requested_range, status))

    def requests_for(self, name):
        return [(requested_range, status) for logged, requested_range, status in self.log if logged == name]


@pytest.fixture
def server(tiny):
    archives, _ = tiny
    fake = FakeServer({f"files/{name}": data for name, data in archives.items()})
    fake.thread.start()
    yield fake
    fake.httpd.shutdown()
    fake.httpd.server_close()


def _on_server(name: str) -> str:
    """The path the fake server serves archive ``name`` under."""
    return f"files/{name}"


def _run(target: Path, manifest: Path, server: FakeServer, **kwargs):
    options = {"progress": False, "retry_wait_s": 0.0, "timeout_s": 10.0}
    options.update(kwargs)
    return download_dataset(target, which=("development",), base_url=server.url, manifest=manifest, **options)


def _assert_complete_dataset(target: Path, contents: dict[str, bytes]) -> None:
    dataset = target / FOLDER
    assert (dataset / COMPLETE_MARKER).is_file()
    for relative, data in contents.items():
        assert (dataset / relative).read_bytes() == data, relative
    extracted = {p.relative_to(dataset).as_posix() for p in dataset.rglob("*") if p.is_file()}
    assert extracted == set(contents) | {COMPLETE_MARKER}
    assert not [p for p in target.iterdir() if p.name.endswith(".extracting")]


def _only_hidden_or_archives(target: Path) -> bool:
    """Nothing in ``target`` looks like a dataset: only the archives folder and hidden staging."""
    return all(p.name == ARCHIVES_FOLDER or p.name.startswith(".") for p in target.iterdir())


# ------------------------------------------------------------------------------------------
# Tests
# ------------------------------------------------------------------------------------------

def test_downloads_verifies_and_extracts_the_official_layout(tmp_path, tiny, server):
    archives, contents = tiny
    manifest = _write_manifest(tmp_path / "manifest.yaml", archives)
    target = tmp_path / "datasets"

    result = _run(target, manifest, server)

    _assert_complete_dataset(target, contents)
    info = result["development"]
    assert info["path"] == str(target / FOLDER)
    assert info["downloaded_bytes"] == sum(len(data) for data in archives.values())
    assert info["check"]["meta"]["count"] == 20
    assert info["check"]["audio"] == {"checked": 20, "missing": {"count": 0, "first": []},
                                      "unreadable": {"count": 0, "first": []}}
    for name in PARTS:  # each part fetched once, whole
        assert server.requests_for(name) == [(None, 200)]
    assert not (target / ARCHIVES_FOLDER).exists()  # archives removed once the set is complete


def test_complete_parts_and_sets_are_not_fetched_or_hashed_again(tmp_path, tiny, server, monkeypatch):
    archives, contents = tiny
    manifest = _write_manifest(tmp_path / "manifest.yaml", archives)
    target = tmp_path / "datasets"
    _run(target, manifest, server, keep_archives=True)
    assert len(server.log) == len(PARTS)
    hashed = []
    original_update_md5 = download._update_md5
    monkeypatch.setattr(download, "_update_md5",
                        lambda hasher, path, **kw: hashed.append(path) or original_update_md5(hasher, path, **kw))

    again = _run(target, manifest, server, keep_archives=True)
    assert again["development"]["already_complete"] is True
    assert len(server.log) == len(PARTS) and hashed == []

    # The dataset folder is gone, the verified archives are not: extracted again, no request, no hashing.
    import shutil
    shutil.rmtree(target / FOLDER)
    rebuilt = _run(target, manifest, server, keep_archives=True)
    assert rebuilt["development"]["downloaded_bytes"] == 0
    assert len(server.log) == len(PARTS) and hashed == []
    _assert_complete_dataset(target, contents)


def test_a_connection_broken_midway_resumes_from_that_byte(tmp_path, tiny, server):
    archives, contents = tiny
    manifest = _write_manifest(tmp_path / "manifest.yaml", archives)
    cut = 123_457
    assert cut < len(archives[AUDIO1])
    server.break_after[_on_server(AUDIO1)] = cut

    _run(tmp_path / "datasets", manifest, server, retries=2)

    assert server.requests_for(AUDIO1) == [(None, 200), (f"bytes={cut}-", 206)]
    _assert_complete_dataset(tmp_path / "datasets", contents)


def test_an_interrupted_run_keeps_the_partial_part_and_a_rerun_resumes_it(tmp_path, tiny, server):
    archives, contents = tiny
    manifest = _write_manifest(tmp_path / "manifest.yaml", archives)
    target = tmp_path / "datasets"
    cut = 98_765
    server.break_after[_on_server(AUDIO2)] = cut

    with pytest.raises(Task1aError) as failure:
        _run(target, manifest, server, retries=0)
    message = str(failure.value)
    assert "\n" not in message and f"{server.url}/{AUDIO2}" in message and "rerun to resume" in message
    partial = target / ARCHIVES_FOLDER / (AUDIO2 + ".part")
    assert partial.read_bytes() == archives[AUDIO2][:cut]
    assert _only_hidden_or_archives(target)

    _run(target, manifest, server)

    assert server.requests_for(AUDIO2) == [(None, 200), (f"bytes={cut}-", 206)]
    for name in (DOC, META, AUDIO1):  # verified in the first run: not fetched again
        assert server.requests_for(name) == [(None, 200)]
    _assert_complete_dataset(target, contents)


def test_a_server_ignoring_range_restarts_the_part_cleanly(tmp_path, tiny, server):
    archives, contents = tiny
    manifest = _write_manifest(tmp_path / "manifest.yaml", archives)
    target = tmp_path / "datasets"
    # Kept bytes that do not even match the file: only a clean restart gives the right MD5.
    (target / ARCHIVES_FOLDER).mkdir(parents=True)
    (target / ARCHIVES_FOLDER / (AUDIO1 + ".part")).write_bytes(b"\0" * 5000)
    server.ignore_range = True

    result = _run(target, manifest, server, retries=0)

    assert server.requests_for(AUDIO1) == [("bytes=5000-", 200)]
    assert result["development"]["downloaded_bytes"] == sum(len(data) for data in archives.values())
    _assert_complete_dataset(target, contents)


def test_a_wrong_checksum_deletes_the_part_and_says_to_rerun(tmp_path, tiny, server):
    archives, contents = tiny
    manifest = _write_manifest(tmp_path / "manifest.yaml", archives)
    target = tmp_path / "datasets"
    server.tampered.add(_on_server(META))

    with pytest.raises(Task1aError) as failure:
        _run(target, manifest, server)
    message = str(failure.value)
    assert "\n" not in message
    assert f"checksum mismatch for {META}" in message and "rerun" in message
    assert hashlib.md5(archives[META]).hexdigest() in message
    assert not (target / ARCHIVES_FOLDER / META).exists()
    assert not (target / ARCHIVES_FOLDER / (META + ".part")).exists()
    assert _only_hidden_or_archives(target)

    server.tampered.clear()
    _run(target, manifest, server)
    assert server.requests_for(DOC) == [(None, 200)]  # verified before the failure: kept
    assert server.requests_for(META) == [(None, 200), (None, 200)]
    _assert_complete_dataset(target, contents)


def test_a_missing_file_is_one_line_naming_the_url(tmp_path, tiny, server):
    archives, _ = tiny
    manifest = _write_manifest(tmp_path / "manifest.yaml", archives)
    server.missing.add(_on_server(AUDIO1))

    with pytest.raises(Task1aError) as failure:
        _run(tmp_path / "datasets", manifest, server, retries=3)
    message = str(failure.value)
    assert "\n" not in message and "HTTP 404" in message and f"{server.url}/{AUDIO1}" in message
    assert server.requests_for(AUDIO1) == [(None, 404)]  # a 404 is not retried


def test_an_unreachable_server_fails_after_bounded_retries(tmp_path, tiny):
    archives, _ = tiny
    manifest = _write_manifest(tmp_path / "manifest.yaml", archives)
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = closed.server_address[1]
    closed.server_close()  # nothing listens on that port any more

    with pytest.raises(Task1aError) as failure:
        download_dataset(tmp_path / "datasets", base_url=f"http://127.0.0.1:{port}/files", manifest=manifest,
                         progress=False, retries=2, retry_wait_s=0.0, timeout_s=5.0)
    message = str(failure.value)
    assert "\n" not in message and f"http://127.0.0.1:{port}/files/{DOC}" in message
    assert "failed 3 times in a row" in message


def test_a_corrupt_zip_leaves_nothing_looking_complete(tmp_path, tiny, server):
    archives, contents = tiny
    # audio.2 without published size and MD5 (as the evaluation set's parts): only the zip check can tell.
    manifest = _write_manifest(tmp_path / "manifest.yaml", archives, unpublished=(AUDIO2,))
    target = tmp_path / "datasets"
    server.files[_on_server(AUDIO2)] = archives[AUDIO2][: len(archives[AUDIO2]) // 2]

    with pytest.raises(Task1aError) as failure:
        _run(target, manifest, server)
    message = str(failure.value)
    assert "\n" not in message and AUDIO2 in message and "corrupt" in message and "rerun" in message
    assert _only_hidden_or_archives(target)
    assert not (target / FOLDER).exists()
    assert not (target / ARCHIVES_FOLDER / AUDIO2).exists()  # deleted, so a rerun fetches it again

    server.files[_on_server(AUDIO2)] = archives[AUDIO2]
    _run(target, manifest, server)
    assert [status for _, status in server.requests_for(AUDIO2)] == [200, 200]
    assert server.requests_for(AUDIO1) == [(None, 200)]
    _assert_complete_dataset(target, contents)


def test_an_extraction_killed_midway_is_resumed_and_never_looks_complete(tmp_path, tiny, server, monkeypatch):
    archives, contents = tiny
    manifest = _write_manifest(tmp_path / "manifest.yaml", archives)
    target = tmp_path / "datasets"
    original_extract = zipfile.ZipFile.extract
    extracted_from_audio2 = []

    def killed_after_three_files_of_audio2(self, member, path=None, pwd=None):
        if Path(self.filename).name == AUDIO2:
            if len(extracted_from_audio2) == 3:
                raise KeyboardInterrupt  # as if the user pressed Ctrl-C (or the run was killed)
            extracted_from_audio2.append(member)
        return original_extract(self, member, path, pwd)

    monkeypatch.setattr(zipfile.ZipFile, "extract", killed_after_three_files_of_audio2)
    with pytest.raises(KeyboardInterrupt):
        _run(target, manifest, server)
    assert not (target / FOLDER).exists()
    assert _only_hidden_or_archives(target)
    staging = target / f".{FOLDER}.extracting"
    assert len(list((staging / FOLDER / "audio").iterdir())) == 10 + 3  # audio.1 and part of audio.2

    monkeypatch.setattr(zipfile.ZipFile, "extract", original_extract)
    _run(target, manifest, server)
    assert len(server.log) == len(PARTS)  # nothing fetched again
    _assert_complete_dataset(target, contents)


def test_audio_missing_from_the_archives_fails_the_final_check(tmp_path, server):
    archives, _ = _tiny_dataset(extra_listed="audio/park-lisbon-1004-40004-1-a.wav")
    for name, data in archives.items():
        server.files[_on_server(name)] = data
    manifest = _write_manifest(tmp_path / "manifest.yaml", archives)
    target = tmp_path / "datasets"

    with pytest.raises(Task1aError) as failure:
        _run(target, manifest, server)
    message = str(failure.value)
    assert "\n" not in message and "1 missing" in message and "park-lisbon-1004-40004-1-a.wav" in message
    assert not (target / FOLDER).exists()


def test_the_evaluation_set_without_published_sizes_is_downloaded_and_checked(tmp_path, tiny, server):
    archives, _ = tiny
    clips = {f"audio/{index}.wav": _wav_bytes(seed=100 + index) for index in range(4)}
    setup = ("filename\n" + "".join(f"{name}\n" for name in clips)).encode()
    evaluation = {
        f"{EVALUATION_FOLDER}.meta.zip": _zip({f"{EVALUATION_FOLDER}/evaluation_setup/fold1_test.csv": setup}),
        f"{EVALUATION_FOLDER}.audio.1.zip": _zip({f"{EVALUATION_FOLDER}/{n}": d for n, d in clips.items()}),
    }
    for name, data in evaluation.items():
        server.files[_on_server(name)] = data
    manifest = _write_manifest(tmp_path / "manifest.yaml", archives, evaluation=evaluation)
    target = tmp_path / "datasets"
    server.break_after[_on_server(f"{EVALUATION_FOLDER}.audio.1.zip")] = 50_000

    result = download_dataset(target, which=("development", "evaluation"), base_url=server.url,
                              manifest=manifest, progress=False, retry_wait_s=0.0)

    assert result["evaluation"]["check"]["test"]["count"] == 4
    assert result["evaluation"]["check"]["audio"]["checked"] == 4
    assert server.requests_for(f"{EVALUATION_FOLDER}.audio.1.zip") == [(None, 200), ("bytes=50000-", 206)]
    for name, data in {**clips, "evaluation_setup/fold1_test.csv": setup}.items():
        assert (target / EVALUATION_FOLDER / name).read_bytes() == data
    assert (target / FOLDER / COMPLETE_MARKER).is_file() and (target / EVALUATION_FOLDER / COMPLETE_MARKER).is_file()


def test_a_second_run_into_the_same_folder_is_refused(tmp_path, tiny, server):
    archives, _ = tiny
    manifest = _write_manifest(tmp_path / "manifest.yaml", archives)
    target = tmp_path / "datasets"
    target.mkdir()
    with open(target / download.LOCK_FILE, "a") as held:
        lock_file(held)  # as a running download holds it
        with pytest.raises(Task1aError, match="another download into .* is running"):
            _run(target, manifest, server)
    assert server.log == []
    _run(target, manifest, server)  # the lock is free again
    assert (target / FOLDER / COMPLETE_MARKER).is_file()


def test_a_full_disk_is_refused_before_any_request(tmp_path, tiny, server, monkeypatch):
    archives, _ = tiny
    manifest = _write_manifest(tmp_path / "manifest.yaml", archives)
    total = sum(len(data) for data in archives.values())

    class Usage:
        free = total  # enough for the archives, not for the archives and the extracted audio

    monkeypatch.setattr(download.shutil, "disk_usage", lambda path: Usage)
    with pytest.raises(Task1aError, match=r"GB free .* needs at least"):
        _run(tmp_path / "datasets", manifest, server)
    assert server.log == []


def test_a_folder_not_left_by_the_downloader_is_never_overwritten(tmp_path, tiny, server):
    archives, _ = tiny
    manifest = _write_manifest(tmp_path / "manifest.yaml", archives)
    user_copy = tmp_path / "datasets" / FOLDER
    user_copy.mkdir(parents=True)
    (user_copy / "meta.csv").write_text("mine\n")

    with pytest.raises(Task1aError, match="not left by a complete download"):
        _run(tmp_path / "datasets", manifest, server)
    assert (user_copy / "meta.csv").read_text() == "mine\n" and server.log == []


def test_the_command_line_prints_one_error_line_and_exits_1(tmp_path, tiny, server, capsys):
    archives, contents = tiny
    manifest = _write_manifest(tmp_path / "manifest.yaml", archives)
    server.missing.add(_on_server(DOC))
    arguments = [str(tmp_path / "datasets"), "--base-url", server.url, "--manifest", str(manifest), "--no-progress"]

    assert download.main(arguments) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [f"error: cannot download {server.url}/{DOC}: HTTP 404 Not Found; "
                     "check the address (--base-url) or the download manifest"]

    server.missing.clear()
    assert download.main(arguments) == 0
    assert capsys.readouterr().out.strip() == f"development: {tmp_path / 'datasets' / FOLDER}"
    _assert_complete_dataset(tmp_path / "datasets", contents)


def test_the_shipped_manifest_lists_the_published_parts():
    releases = load_manifest()
    development, evaluation = releases["development"], releases["evaluation"]
    assert development.folder == FOLDER and "6337421" in development.url
    assert evaluation.folder == "TAU-urban-acoustic-scenes-2023-mobile-evaluation" and "7870258" in evaluation.url
    for release, audio_parts in ((development, 16), (evaluation, 8)):
        expected = [f"{release.folder}.doc.zip", f"{release.folder}.meta.zip",
                    *(f"{release.folder}.audio.{n}.zip" for n in range(1, audio_parts + 1))]
        assert [part.file for part in release.parts] == expected
        assert all(part.md5 is not None for part in release.parts)
        assert len({part.md5 for part in release.parts}) == len(release.parts)
    assert all(part.bytes for part in development.parts)


@pytest.mark.parametrize("change, key", [
    ({"md5": "not-a-checksum"}, "parts[0].md5"),
    ({"bytes": -1}, "parts[0].bytes"),
    ({"file": "../escape.zip"}, "parts[0].file"),
])
def test_a_malformed_manifest_names_the_key(tmp_path, tiny, change, key):
    archives, _ = tiny
    manifest = _write_manifest(tmp_path / "manifest.yaml", archives)
    data = yaml.safe_load(manifest.read_text())
    data["sets"]["development"]["parts"][0].update(change)
    manifest.write_text(yaml.safe_dump(data))
    with pytest.raises(Task1aError, match=re.escape(f"sets.development.{key}")):
        load_manifest(manifest)


def test_each_edition_has_its_evaluation_set_in_the_shipped_manifest(tmp_path):
    """2023, 2024 and 2025 each name their own evaluation set; one whose archives are not published here
    is refused in one line saying where to put it, before anything is written."""
    from utils import editions
    from utils.download import _evaluation_set, load_manifest

    releases = load_manifest()
    sets = {year: releases[_evaluation_set(year)] for year in (2023, 2024, 2025)}
    assert [sets[year].folder for year in (2023, 2024, 2025)] == [f"TAU-urban-acoustic-scenes-{year}-mobile-evaluation" for year in (2023, 2024, 2025)]
    assert all(release.kind == "evaluation" for release in sets.values())
    assert sets[2025].url == "https://zenodo.org/records/15517945/files" and len(sets[2025].parts) == 14
    assert sets[2024].url is None and sets[2024].parts == ()
    for year in (2024, 2025):  # the folder a challenge run of the edition reads is the one the download makes
        assert editions.get(year).protocol["dataset.parameters.evaluation"].endswith(sets[year].folder)
    with pytest.raises(Task1aError) as caught:
        download_dataset(tmp_path / "datasets", which=("evaluation_2024",), progress=False)
    assert "TAU-urban-acoustic-scenes-2024-mobile-evaluation" in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "datasets").exists() or not any((tmp_path / "datasets").iterdir())
