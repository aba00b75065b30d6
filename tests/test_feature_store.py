"""utils.feature_store: the generic store (any extractor with ``fs``, ``params``, ``row_shape``,
``extract_into``; it never imports ``utils.features``), its public writer, and the boundaries of the
audio / feature store / features split (none of the three imports TensorFlow; the normaliser statistics
read from a store).

The store with the real log-mel extractor (resume, kill -9, workers) is tested in test_features.py;
the shared ground floor moved out of this file (formerly test_features_split.py): the audio extensions
and the RIFF chunk walker to test_audio.py, ``file_digest`` / ``usable_cores`` to test_files.py, the
features command line to test_features.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from utils import audio, feature_store, features
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
    with pytest.raises(Task1aError, match="storage 'float64'"):
        feature_store.store_manifest({}, 10, "float64", (2, 3), keys)


@pytest.mark.parametrize("module", ["utils.audio", "utils.feature_store", "utils.features"])
def test_modules_stay_below_tensorflow_and_the_store_below_the_extractor(module):
    code = f"import sys, {module}; print('tensorflow' in sys.modules, 'utils.features' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False", str(module == "utils.features")]


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
