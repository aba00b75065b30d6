"""The boundaries of the audio / feature store / features split, and the ground-floor helpers they share.

- the store is generic: it runs any extractor with ``fs``, ``params``, ``row_shape``, ``extract_into``
  and never imports ``utils.features``; none of the three imports TensorFlow;
- one list of audio extensions (``utils.audio``), used by ``--predict`` too;
- one RIFF chunk walker serving the fast WAV reader and the truncation check;
- ``utils.files.file_digest`` / ``usable_cores``; the features CLI reads parameters through the container.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from utils import audio, feature_store, features, files, testing
from utils.errors import Task1aError

REPO = Path(__file__).resolve().parents[1]
FS = 8000


class MeanExtractor:
    """A stand-in extractor: each row is the segment's samples folded into (4, n / 4), times 2."""

    fs = FS
    params = {"name": "fold", "rows": 4}

    def row_shape(self, n_samples):
        return (4, n_samples // 4)

    def extract_into(self, segment, out):
        out[...] = 2.0 * segment[: out.size].reshape(out.shape)


def clips(folder: Path, lengths) -> list:
    rng = np.random.default_rng(3)
    paths = []
    for i, n in enumerate(lengths):
        path = folder / f"c{i}.wav"
        soundfile.write(str(path), rng.uniform(-0.5, 0.5, n), FS, subtype="PCM_16")
        paths.append(path)
    return paths


def test_store_runs_any_extractor_it_is_given(tmp_path):
    paths = clips(tmp_path, [FS, 2 * FS + 17, FS // 2])
    keys = [p.name for p in paths]
    store = feature_store.extract_to_store(paths, keys, tmp_path / "store", MeanExtractor(), n_jobs=1, progress=False)
    assert store.is_complete and store.row_shape == (4, FS // 4) and store.extractor_params == MeanExtractor.params
    assert list(store.segment_counts(keys)) == [1, 2, 1]
    expected = 2.0 * audio.segment_audio(audio.load_audio(paths[1], FS), FS).reshape(2, 4, FS // 4)
    assert np.array_equal(store.read(store.rows_of([keys[1]])), expected.astype(np.float32))
    manifest = feature_store.store_manifest(MeanExtractor.params, FS, "float32", (4, FS // 4), keys)
    assert manifest == json.loads((tmp_path / "store" / "manifest.json").read_text())  # the public manifest is the written one


def test_store_refuses_an_object_that_is_not_an_extractor(tmp_path):
    paths = clips(tmp_path, [FS])
    with pytest.raises(Task1aError, match="lacks .*row_shape, extract_into"):
        feature_store.extract_to_store(paths, ["a"], tmp_path / "store", object(), n_jobs=1, progress=False)
    assert not (tmp_path / "store").exists()  # checked before any work


def test_store_writer_public_api_writes_a_readable_store(tmp_path):
    keys = ["x", "y", "z"]
    manifest = feature_store.store_manifest({"any": 1}, 10, "float32", (2, 3), keys)
    writer = feature_store.StoreWriter(tmp_path / "s", manifest)
    try:
        writer.add(keys[:2], [1, 2], np.arange(18, dtype=np.float32).reshape(3, 2, 3), {"z": "unreadable"})
        writer.commit()
    finally:
        writer.close()
    store = feature_store.FeatureStore(tmp_path / "s")
    assert store.keys == ["x", "y"] and store.failed == {"z": "unreadable"} and store.is_complete
    assert np.array_equal(store.read(store.rows_of(["y"])), np.arange(6, 18, dtype=np.float32).reshape(2, 2, 3))
    with pytest.raises(Task1aError, match="storage 'float16'"):
        feature_store.store_manifest({}, 10, "float16", (2, 3), keys)


@pytest.mark.parametrize("module", ["utils.audio", "utils.feature_store", "utils.features"])
def test_modules_stay_below_tensorflow_and_the_store_below_the_extractor(module):
    code = f"import sys, {module}; print('tensorflow' in sys.modules, 'utils.features' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False", str(module == "utils.features")]


def test_one_list_of_audio_extensions_that_soundfile_reads(tmp_path):
    assert testing.AUDIO_EXTENSIONS is audio.AUDIO_EXTENSIONS
    assert ".m4a" not in audio.AUDIO_EXTENSIONS  # neither libsndfile nor audioread (no ffmpeg) reads it
    y = np.random.default_rng(0).uniform(-0.3, 0.3, 4800)
    written = {".opus": dict(format="OGG", subtype="OPUS"), ".aif": dict(format="AIFF"), ".au": dict(format="AU"), ".flac": {}}
    for extension, kwargs in written.items():
        soundfile.write(str(tmp_path / f"x{extension}"), y, 48000, **kwargs)
        assert audio.load_audio(tmp_path / f"x{extension}", 48000).shape == (4800,)
    (tmp_path / "notes.txt").write_text("not audio")
    assert [p.name for p in audio.audio_files_under(tmp_path)] == sorted(f"x{e}" for e in written)


def test_one_chunk_walker_serves_the_reader_and_the_truncation_check(tmp_path):
    path = tmp_path / "a.wav"
    soundfile.write(str(path), np.zeros(100), FS, subtype="PCM_16")
    raw = path.read_bytes()
    chunks = list(audio._wave_chunks(lambda at, n: raw[at : at + n], len(raw)))
    assert [c[0] for c in chunks] == [b"fmt ", b"data"] and chunks[-1][2] == 200
    assert list(audio._wave_chunks(lambda at, n: b"RIFX" + raw[4:][at : at + n], len(raw))) == []
    cut = tmp_path / "cut.wav"
    cut.write_bytes(raw[:-50])
    assert audio.wav_truncation(path) is None and "declares 200 bytes but the file holds 150" in audio.wav_truncation(cut)
    assert audio.read_plain_wav(cut) is None and audio.read_plain_wav(path)[1] == FS


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
    assert feature_store.resolve_jobs(-1) == expected and feature_store.resolve_jobs(3) == 3
    with pytest.raises(Task1aError, match="n_jobs"):
        feature_store.resolve_jobs(0)


def test_fit_mean_std_and_normalizers_from_the_store(tmp_path):
    paths = clips(tmp_path, [FS, 3 * FS])
    keys = [p.name for p in paths]
    store = feature_store.extract_to_store(paths, keys, tmp_path / "store", MeanExtractor(), n_jobs=1, progress=False)
    statistics = features.fit_mean_std(store, keys, chunk=3)  # chunked as the learning stage reads
    rows = store.read(store.rows_of(keys))
    whole = features.MeanStdNormalizer().partial_fit(rows).to_dict()
    assert statistics["count"] == whole["count"] and np.allclose(statistics["mean"], whole["mean"], rtol=0, atol=1e-12)
    normalized = features.load_normalized(store, keys, features.build_normalizer("mean_std", statistics), chunk=3)
    assert normalized.shape == rows.shape and np.allclose(normalized.mean(axis=(0, 2)), 0, atol=1e-5)
    assert np.array_equal(features.load_normalized(store, keys, features.build_normalizer("none")), rows)
    with pytest.raises(Task1aError, match="known: max_abs_int16, none, mean_std"):
        features.build_normalizer("zscore")


def test_cli_reads_the_mel_parameters_through_the_container(tmp_path):
    path = clips(tmp_path, [FS])[0]
    bad = tmp_path / "bad.yaml"
    bad.write_text("defaults: [1, 2\n")
    run = subprocess.run([sys.executable, "-m", "utils.features", str(path), "-o", str(tmp_path / "o.npy"), "--params", str(bad)],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and run.stderr.startswith("error: ") and "bad.yaml" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    run = subprocess.run([sys.executable, "-m", "utils.features", str(path), "-o", str(tmp_path / "o.txt")],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "must end in .npy" in run.stderr
