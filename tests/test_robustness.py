"""Bad data and interruptions, as a participant with 30 GB of audio meets them (issue 8).

Most cases run the real command line (``python task1a.py`` in a subprocess) on a hard-linked copy of
one tiny generated demo dataset (135 development clips, in the official TAU 2022 layout) that the
test then damages. Each case must end in exactly one ``error: ...`` line naming the file or key and
the fix with exit status 1 and no traceback (``--debug`` shows it), or in a correct result; never a
silent wrong result. The ``kill -9`` cases kill the whole process group at a moment read from the
workspace (the first store journal line, the first checkpoint, the testing progress bar), rerun the
same command without ``-o`` and compare everything with an uninterrupted run.

Cross-cutting on purpose (no single module): each case goes through the command line and every stage
it reaches. The cases that need the trained reference run or the kill -9 chain are marked ``slow``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile
import yaml

from utils.dataset import SCENE_LABELS
from utils.feature_store import FeatureStore
from utils.features import LogMelExtractor

REPO = Path(__file__).resolve().parents[1]
SET_ID = "robust"
EPOCHS = 4
# Extra names given to every clip of fold1_evaluate in the resume dataset: enough files that feature
# extraction (single process) spans several journal commits and testing several interpreter batches,
# so that a kill lands inside the stage.
EVALUATE_REPLICAS = 14
FS = 44100


# ------------------------------------------------------------------------------------------ helpers
def task1a(*args, timeout=600):
    return subprocess.run([sys.executable, "task1a.py", "--no_progress", *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def write_parameters(folder: Path, development: Path, system: Path | None = None, log: Path | None = None) -> Path:
    """A ``-p`` file adding the set ``robust``: the TAU layout reader on ``development``, 4 deterministic epochs."""
    overrides = {
        "sets": [
            {
                "set_id": SET_ID,
                "description": "robustness tests on a (damaged) copy of a tiny demo dataset",
                "general": {"energy": False, "fallback_to_demo": False, "deterministic": True},
                "path": {"system": str(system or folder / "system"), "log": str(log or folder / "log")},
                "dataset": {"method": "tau2022_mobile"},
                "dataset_method_parameters": {"tau2022_mobile": {"development": str(development)}},
                "learner_method_parameters": {
                    "cnn": {"fit": {"epochs": EPOCHS}, "model_selection": {"initial_delay": 0}, "conversion": {"representative_examples": 20}}
                },
            }
        ]
    }
    path = folder / "robust.yaml"
    path.write_text(yaml.safe_dump(overrides))
    return path


def link_copy(source: Path, target: Path) -> Path:
    """A copy of a dataset folder whose files are hard links: cheap; damage files with :func:`replace_file`."""
    shutil.copytree(source, target, copy_function=os.link)
    return target


def replace_file(path: Path, data: bytes) -> None:
    """Give ``path`` new content without touching the file it is hard-linked to."""
    path.unlink(missing_ok=True)
    path.write_bytes(data)


def read_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def write_table(path: Path, table: pd.DataFrame, sep: str = "\t") -> None:
    replace_file(path, table.to_csv(sep=sep, index=False, lineterminator="\r\n").encode())


def one_line_error(result, *fragments) -> str:
    """The run failed with exit 1 and exactly one ``error:`` line holding every fragment, no traceback."""
    assert result.returncode == 1, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


def only(paths):
    paths = list(paths)
    assert len(paths) == 1, paths
    return paths[0]


class Workspace:
    """A dataset copy, its ``-p`` file and its system folder."""

    def __init__(self, root: Path, development: Path, **paths):
        self.root, self.development = root, development
        self.params = write_parameters(root, development, **paths)
        self.system = Path(yaml.safe_load(self.params.read_text())["sets"][0]["path"]["system"])

    def run(self, *args, **kwargs):
        return task1a("-p", self.params, "-s", SET_ID, *args, **kwargs)

    def store(self) -> FeatureStore:
        return FeatureStore(only(self.system.glob("features/*/development")))

    def outputs(self, pattern: str) -> list:
        return sorted(self.system.glob(pattern))


def evaluate_table(development: Path) -> pd.DataFrame:
    return read_table(development / "evaluation_setup" / "fold1_evaluate.csv")


# ----------------------------------------------------------------------------------------- datasets
@pytest.fixture(scope="module")
def demo_source(tmp_path_factory) -> Path:
    """One tiny demo development set (3 cities, 45 training and 90 test clips), read-only for the tests."""
    from utils.demo_dataset import generate_demo_dataset
    from utils.settings import demo_from_block

    settings = demo_from_block(dict(cities=["barcelona", "helsinki", "lisbon"], locations_per_city=1, segments_per_location=1,
                                    test_locations_per_scene=1, test_segments_per_location=1, subsegments_per_segment=1,
                                    evaluation_locations_per_scene=1, evaluation_files=10))
    paths = generate_demo_dataset(tmp_path_factory.mktemp("demo") / "demo", settings, progress=False, n_jobs=1)
    return paths["development"]


@pytest.fixture
def workspace(demo_source, tmp_path) -> Workspace:
    return Workspace(tmp_path, link_copy(demo_source, tmp_path / "development"))


def renamed(filename: str, segment_offset: int) -> str:
    """An official-looking name for a copy of ``filename``: the same clip under another segment id."""
    scene, city, location, segment, rest = Path(filename).name.split("-", 4)
    return f"audio/{scene}-{city}-{location}-{int(segment) + segment_offset}-{rest}"


@pytest.fixture(scope="module")
def resume_dataset(demo_source, tmp_path_factory):
    """The demo set with a 15x test fold (hard links under new segment ids), a stereo and a 48 kHz clip.

    Returns ``(development folder, {"stereo": (name, source name), "48k": (name, source name)})``. The
    stereo clip holds ``x + d`` and ``x - d`` (24-bit integers, so their mean is exactly ``x``); the
    48 kHz clip is ``x`` resampled with soxr (another resampler than the app's resampy).
    """
    import librosa

    development = link_copy(demo_source, tmp_path_factory.mktemp("resume") / "development")
    meta, evaluate = read_table(development / "meta.csv"), evaluate_table(development)
    added_meta, added_evaluate = [], []
    for replica in range(1, EVALUATE_REPLICAS + 1):
        for name in evaluate["filename"]:
            copy = renamed(name, 100000 * replica)
            os.link(development / name, development / copy)
            added_meta.append(dict(meta.set_index("filename").loc[name], filename=copy))
            added_evaluate.append({"filename": copy, "scene_label": added_meta[-1]["scene_label"]})
    source_stereo, source_48k = evaluate["filename"].iloc[0], evaluate["filename"].iloc[1]
    variants = {"stereo": (renamed(source_stereo, 5000000), source_stereo), "48k": (renamed(source_48k, 6000000), source_48k)}
    x = soundfile.read(str(development / source_stereo), dtype="int32")[0] // 256  # the 24-bit integers
    d = soundfile.read(str(development / source_48k), dtype="int32")[0] // 256
    d = d * (2**23 - 1 - np.abs(x).max()) // np.abs(d).max()  # as loud as the headroom allows, no clipping
    soundfile.write(str(development / variants["stereo"][0]), np.stack([x + d, x - d], axis=1) * 256, FS, subtype="PCM_24")
    y, _ = soundfile.read(str(development / source_48k), dtype="float64")
    soundfile.write(str(development / variants["48k"][0]), librosa.resample(y, orig_sr=FS, target_sr=48000, res_type="soxr_hq"), 48000, subtype="FLOAT")
    for name, source in variants.values():
        added_meta.append(dict(meta.set_index("filename").loc[source], filename=name))
        added_evaluate.append({"filename": name, "scene_label": added_meta[-1]["scene_label"]})
    write_table(development / "meta.csv", pd.concat([meta, pd.DataFrame(added_meta)[meta.columns]], ignore_index=True))
    write_table(development / "evaluation_setup" / "fold1_evaluate.csv", pd.concat([evaluate, pd.DataFrame(added_evaluate)], ignore_index=True))
    return development, variants


@pytest.fixture(scope="module")
def reference(resume_dataset, tmp_path_factory) -> Workspace:
    """An uninterrupted run on the resume dataset (the result every interrupted run must reach)."""
    root = tmp_path_factory.mktemp("reference")
    space = Workspace(root, resume_dataset[0])
    result = space.run("--jobs", 1)
    assert result.returncode == 0, result.stderr[-3000:]
    return space


# -------------------------------------------------------------------------------------- bad audio
def wav_bytes(tmp_path: Path, data: np.ndarray, fs: int = FS, subtype: str = "PCM_24") -> bytes:
    path = tmp_path / "scratch.wav"
    soundfile.write(str(path), data, fs, subtype=subtype)
    return path.read_bytes()


def header_of(raw: bytes) -> bytes:
    return raw[: raw.index(b"data") + 8]


BAD_AUDIO = {
    # case: (make the bad content from the original bytes, fragment the error must hold)
    "empty (0 bytes)": (lambda raw, tmp: b"", "empty (0 bytes)"),
    "header only": (lambda raw, tmp: header_of(raw), "truncated"),
    "cut mid-data": (lambda raw, tmp: raw[: len(raw) // 2], "truncated"),
    "text renamed .wav": (lambda raw, tmp: b"filename\tscene_label\nnot audio at all\n" * 20, "valid WAV"),
    "valid header, 0 frames": (lambda raw, tmp: wav_bytes(tmp, np.zeros(0)), "no samples"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", BAD_AUDIO)
def test_bad_audio_file_stops_the_run_with_one_line_naming_it(workspace, tmp_path, case):
    make, fragment = BAD_AUDIO[case]
    name = evaluate_table(workspace.development)["filename"].iloc[3]
    replace_file(workspace.development / name, make((workspace.development / name).read_bytes(), tmp_path))
    error = one_line_error(workspace.run(), name, fragment, "restore")
    assert "1 audio file(s)" in error
    # nothing downstream looks complete, and the store remembers the failure (so it is not reused as is)
    assert workspace.outputs("learner/*/*/learning.yaml") == [] and workspace.outputs("recognizer/*/*/output.csv") == []
    store = workspace.store()
    assert list(store.failed) == [name] and name not in store and len(store.keys) == 134


def test_debug_shows_the_traceback(workspace):
    name = evaluate_table(workspace.development)["filename"].iloc[0]
    replace_file(workspace.development / name, b"")
    result = workspace.run("--debug")
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "Task1aError" in result.stderr and name in result.stderr


@pytest.mark.slow
@pytest.mark.e2e
def test_restored_file_is_picked_up_by_the_rerun(workspace, tmp_path, reference):
    """A truncated file (which libsndfile would read in part, silently) stops the run; once restored,
    a rerun extracts just that file and tests to the very numbers of an undamaged dataset."""
    name = evaluate_table(workspace.development)["filename"].iloc[5]
    original = (workspace.development / name).read_bytes()
    replace_file(workspace.development / name, original[: len(original) * 3 // 4])
    one_line_error(workspace.run(), name, "truncated")
    replace_file(workspace.development / name, original)
    model = only(reference.outputs("learner/*/seed_0/model_float.tflite"))
    result = workspace.run("--model", model, "--output", tmp_path / "out.csv")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "features: resuming" in result.stderr
    mine = read_table(tmp_path / "out.csv").set_index("filename")
    theirs = read_table(only(reference.outputs("recognizer/*/seed_0/output.csv"))).set_index("filename")
    assert len(mine) == 90 and mine.equals(theirs.loc[mine.index])


def test_check_audio_lists_every_damaged_file(workspace, tmp_path):
    """``python -m utils.dataset PATH --check-audio``, which the extraction error points to, lists them all."""
    names = evaluate_table(workspace.development)["filename"].iloc[:4].tolist()
    raw = (workspace.development / names[0]).read_bytes()
    replace_file(workspace.development / names[0], raw[: len(raw) // 2])
    replace_file(workspace.development / names[1], b"")
    replace_file(workspace.development / names[2], b"not audio\n" * 50)
    (workspace.development / names[3]).unlink()
    result = subprocess.run([sys.executable, "-m", "utils.dataset", str(workspace.development), "--check-audio"], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "135 checked, 1 missing, 3 unreadable" in result.stdout
    listed = {line.split(": ", 1)[1].split(" ")[0]: line.split(":")[0].strip() for line in result.stdout.splitlines() if line.startswith("    ")}
    assert listed == {names[0]: "unreadable", names[1]: "unreadable", names[2]: "unreadable", names[3]: "missing"}
    assert "truncated" in result.stdout


def test_audio_file_missing_from_audio_folder(workspace):
    name = read_table(workspace.development / "evaluation_setup" / "fold1_train.csv")["filename"].iloc[7]
    (workspace.development / name).unlink()
    one_line_error(workspace.run(), name, "not found")
    assert workspace.outputs("learner/*/*/learning.yaml") == []


@pytest.mark.slow
@pytest.mark.e2e
def test_stereo_and_48khz_clips_are_downmixed_and_resampled(reference, resume_dataset):
    """Through the whole run: the stereo clip gives exactly its mono source's features and scores;
    the 48 kHz clip gives the features of its samples resampled to 44.1 kHz (computed here with
    librosa on soundfile's samples), close to those of the 44.1 kHz original."""
    import librosa

    development, variants = resume_dataset
    store = reference.store()
    output = read_table(only(reference.outputs("recognizer/*/seed_0/output.csv"))).set_index("filename")

    stereo, source = variants["stereo"]
    assert np.array_equal(store.read(store.rows_of([stereo])), store.read(store.rows_of([source])))
    assert output.loc[stereo].equals(output.loc[source])

    resampled, source = variants["48k"]
    y, fs = soundfile.read(str(development / resampled), dtype="float64")
    assert fs == 48000
    extractor = LogMelExtractor(**yaml.safe_load((REPO / "task1a.yaml").read_text())["defaults"]["feature_extractor_method_parameters"]["mel"])
    expected = extractor.extract(librosa.resample(y, orig_sr=fs, target_sr=FS, res_type="kaiser_best")[:FS])
    stored = store.read(store.rows_of([resampled]))[0]
    np.testing.assert_allclose(stored, expected, rtol=0, atol=1e-4)
    original = store.read(store.rows_of([source]))[0]
    last_bin = np.array([np.flatnonzero(band).max() for band in extractor.mel_basis])
    below_16k = last_bin < 16000 * extractor.n_fft / FS  # bands wholly below 16 kHz, untouched by the resamplers' filters
    assert below_16k.sum() >= 30
    assert np.median(np.abs(stored - original)[below_16k]) < 0.05
    probabilities = output[list(SCENE_LABELS)].astype(float)
    assert np.abs(probabilities.loc[resampled] - probabilities.loc[source]).max() < 0.05


# ---------------------------------------------------------------------------------------- metadata
def _unknown_scene(development):
    meta = read_table(development / "meta.csv")
    meta.loc[4, "scene_label"] = "airprot"
    write_table(development / "meta.csv", meta)
    return "meta.csv", ["line 6", "unknown scene 'airprot'", "fix that row"]


def _unknown_device(development):
    meta = read_table(development / "meta.csv")
    meta.loc[2, "source_label"] = "z9"
    write_table(development / "meta.csv", meta)
    return "meta.csv", ["line 4", "unknown device 'z9'", "fix that row"]


def _duplicated_meta_row(development):
    meta = read_table(development / "meta.csv")
    write_table(development / "meta.csv", pd.concat([meta, meta.iloc[[10]]], ignore_index=True))
    return "meta.csv", ["duplicated row", meta["filename"].iloc[10], "remove the duplicates"]


def _duplicated_fold_row(development):
    path = development / "evaluation_setup" / "fold1_evaluate.csv"
    fold = read_table(path)
    write_table(path, pd.concat([fold, fold.iloc[[3]]], ignore_index=True))
    return "fold1_evaluate.csv", ["duplicated row", fold["filename"].iloc[3]]


def _comma_separated(development):
    write_table(development / "meta.csv", read_table(development / "meta.csv"), sep=",")
    return "meta.csv", ["comma separated", "tab separated"]


def _semicolon_separated_fold(development):
    path = development / "evaluation_setup" / "fold1_train.csv"
    write_table(path, read_table(path), sep=";")
    return "fold1_train.csv", ["lacks column", "restore the official file"]


def _wrong_header(development):
    meta = read_table(development / "meta.csv").rename(columns={"source_label": "device"})
    write_table(development / "meta.csv", meta)
    return "meta.csv", ["lacks column(s) ['source_label']", "'device'"]


def _fold_label_disagrees_with_meta(development):
    path = development / "evaluation_setup" / "fold1_evaluate.csv"
    fold = read_table(path)
    name, label = fold["filename"].iloc[2], fold["scene_label"].iloc[2]
    fold.loc[2, "scene_label"] = "tram" if label != "tram" else "bus"
    write_table(path, fold)
    return "fold1_evaluate.csv", [name, f"meta.csv says '{label}'"]


def _test_file_in_training_fold(development):
    train_path = development / "evaluation_setup" / "fold1_train.csv"
    leaked = evaluate_table(development).iloc[[6]]
    write_table(train_path, pd.concat([read_table(train_path), leaked], ignore_index=True))
    return "fold1_train.csv", [leaked["filename"].iloc[0], "fold1_evaluate.csv"]


BAD_METADATA = [_unknown_scene, _unknown_device, _duplicated_meta_row, _duplicated_fold_row, _comma_separated,
                _semicolon_separated_fold, _wrong_header, _fold_label_disagrees_with_meta, _test_file_in_training_fold]


@pytest.mark.slow
@pytest.mark.parametrize("damage", BAD_METADATA, ids=lambda f: f.__name__.strip("_"))
def test_bad_metadata_is_one_line_naming_file_and_row(workspace, damage):
    filename, fragments = damage(workspace.development)
    one_line_error(workspace.run(), filename, *fragments)
    assert not workspace.system.joinpath("features").exists()  # stopped before any work


# ------------------------------------------------------------------------------------- parameters
BAD_YAML = {  # case: (the -p file, what the error line must hold; "{file}" stands for the file's path)
    "typo": ("sets: [{set_id: robust, learner_method_parameters: {cnn: {fit: {epohcs: 3}}}}]\n", ["{file}", "unknown parameter", "fit.epohcs", "epochs"]),
    "wrong type": ("defaults: {learner_method_parameters: {cnn: {fit: {batch_size: sixteen}}}}\n",
                   ["{file}", "fit.batch_size", "must be an integer", "sixteen"]),
    "malformed": ("defaults:\n  general: {seed: 0\n", ["{file}", "malformed YAML", "line"]),
    "unknown active set": ("active_set: robsut\n", ["active_set 'robsut' is not among the sets", "demo", "fix active_set"]),
}


@pytest.mark.parametrize("case", BAD_YAML)
def test_bad_parameter_file(workspace, case):
    text, fragments = BAD_YAML[case]
    extra = workspace.root / "extra.yaml"
    extra.write_text(text)
    one_line_error(task1a("-p", extra, "-s", "demo"), *(fragment.replace("{file}", str(extra)) for fragment in fragments))


def test_unknown_parameter_set(workspace):
    one_line_error(workspace.run("-s", "robsut"), "unknown parameter set 'robsut'", SET_ID, "choose one with -s")


# ------------------------------------------------------------------------------------------ models
def bad_models(reference, folder: Path) -> dict:
    model = only(reference.outputs("learner/*/seed_0/model_float.tflite")).read_bytes()
    models = {"truncated": model[: len(model) // 3], "not TFLite": b"this is a Keras model, honest\n" * 40}
    for name, data in models.items():
        (folder / f"{name.replace(' ', '_')}.tflite").write_bytes(data)
    return {name: folder / f"{name.replace(' ', '_')}.tflite" for name in models}


@pytest.mark.slow
@pytest.mark.e2e
def test_bad_model_file_for_testing_and_predict(workspace, reference, tmp_path):
    for kind, path in bad_models(reference, tmp_path).items():
        fragment = "truncated" if kind == "truncated" else "not a TFLite model"
        one_line_error(workspace.run("--model", path), str(path), fragment)
        assert workspace.outputs("recognizer/*/*/output.csv") == []
        clip = workspace.development / evaluate_table(workspace.development)["filename"].iloc[0]
        one_line_error(workspace.run("--predict", clip, "--model", path, "--output", tmp_path / "p.csv"), str(path))
        assert not (tmp_path / "p.csv").exists()


# ---------------------------------------------------------------------------------- unwritable output
def test_unwritable_system_log_and_output_paths(demo_source, tmp_path):
    blocker = tmp_path / "file.txt"  # tests run as root, which chmod does not stop: a path under a FILE is unwritable for anyone
    blocker.write_text("a file, not a folder\n")
    space = Workspace(tmp_path, demo_source, system=blocker / "system")
    one_line_error(space.run(), "cannot create the output folder", str(blocker), "path.system")
    space = Workspace(tmp_path, demo_source, log=blocker / "log")
    one_line_error(space.run(), str(blocker / "log"), "path.log")
    space = Workspace(tmp_path, demo_source, system=tmp_path / "system")
    one_line_error(space.run("--output", blocker / "out.csv"), "--output", "is a file, not a folder")
    assert not (tmp_path / "system").exists()  # refused before any work


def test_full_disk_during_feature_extraction(workspace):
    """The disk fills while the store is written (os.pwrite raises ENOSPC): one line, exit 1, and the
    store stays consistent (nothing journaled that is not on disk), so a rerun can resume from it."""
    inject = (
        "import errno, faulthandler, os, runpy, sys\n"
        "faulthandler.dump_traceback_later(60)\n"  # a hang (multiprocessing.Pool.terminate did) shows where
        "def full(*args): raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))\n"
        "os.pwrite = full\n"
        f"sys.argv = ['task1a.py', '--no_progress', '-p', {str(workspace.params)!r}, '-s', {SET_ID!r}]\n"
        "runpy.run_path('task1a.py', run_name='__main__')\n"
    )
    result = subprocess.run([sys.executable, "-c", inject], cwd=REPO, capture_output=True, text=True, timeout=120)
    one_line_error(result, "data.bin", "No space left on device", "free disk space")
    store = workspace.store()
    assert not store.is_complete and len(store) == 0 and store.failed == {}


# ------------------------------------------------------------------------------------ kill -9 chain
def run_and_kill(args: list, fire, timeout: float = 300, prelude: str = "") -> tuple[int, str, bool]:
    """Run task1a.py (progress bars on) in its own process group; SIGKILL the group once ``fire(stderr so far)``.

    ``prelude``: Python run before task1a.py in the same process (to hold it at a known point).
    Returns (exit status, stderr, whether it was killed).
    """
    command = [sys.executable, "task1a.py", *map(str, args)]
    if prelude:
        command = [sys.executable, "-c", f"{prelude}\nimport runpy, sys\nsys.argv = {['task1a.py', *map(str, args)]!r}\nrunpy.run_path('task1a.py', "
                                         "run_name='__main__')"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    chunks = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: os.read(process.stderr.fileno(), 65536), b"")), daemon=True)
    reader.start()
    killed, deadline = False, time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        if fire(b"".join(chunks).decode(errors="replace")):
            os.killpg(process.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.005)
    else:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    reader.join(timeout=10)
    process.stderr.close()
    return process.returncode, b"".join(chunks).decode(errors="replace"), killed


@pytest.fixture(scope="module")
def kill_chain(resume_dataset, reference, tmp_path_factory):
    """The reference's command in a fresh workspace, killed (-9, whole process group) during feature
    extraction, rerun and killed during training, rerun and killed during testing, rerun to the end.
    Returns what each step saw, the workspace state right after each kill included."""
    space = Workspace(tmp_path_factory.mktemp("killed"), resume_dataset[0])
    command = ["-p", space.params, "-s", SET_ID, "--jobs", 1]
    steps = {}

    def journal_started(_):
        journals = list(space.system.glob("features/*/development/journal.jsonl"))
        return bool(journals) and journals[0].read_bytes().count(b"\n") >= 1

    status, stderr, killed = run_and_kill(command, journal_started)
    store = space.store()
    steps["features"] = dict(status=status, stderr=stderr, killed=killed, stored=len(store.keys), planned=len(store.planned_keys), complete=store.is_complete)

    def first_checkpoint(_):
        return bool(list(space.system.glob("learner/*/seed_0/checkpoint.npz")))

    status, stderr, killed = run_and_kill(command, first_checkpoint)
    checkpoint = only(space.outputs("learner/*/seed_0/checkpoint.npz"))
    with np.load(checkpoint) as data:
        epoch = json.loads(str(data["state"]))["epoch"]
    steps["training"] = dict(status=status, stderr=stderr, killed=killed, checkpoint_epoch=epoch,
                             finished=bool(space.outputs("learner/*/seed_0/learning.yaml")))

    # Held inside testing after its first interpreter batch (testing is too fast to catch on the fly): the
    # second batch waits for the kill, with a marker saying so.
    marker = space.root / "inside_testing"
    hold = (
        "import time\n"
        "import utils.testing\n"
        "original = utils.testing.predict_store\n"
        "def held_store(classifier, *args, **kwargs):\n"
        "    calls, predict = [], classifier.predict_prepared\n"
        "    def held(batch):\n"
        "        calls.append(1)\n"
        "        if len(calls) == 2:\n"
        f"            open({str(marker)!r}, 'w').close()\n"
        "            time.sleep(600)\n"
        "        return predict(batch)\n"
        "    classifier.predict_prepared = held\n"
        "    return original(classifier, *args, **kwargs)\n"
        "utils.testing.predict_store = held_store\n"
    )
    status, stderr, killed = run_and_kill(command, lambda text: marker.exists(), prelude=hold)
    steps["testing"] = dict(status=status, stderr=stderr, killed=killed, outputs=space.outputs("recognizer/*/seed_0/output.csv"),
                            results=space.outputs("evaluator/*/seed_0/results.yaml"), learned=bool(space.outputs("learner/*/seed_0/learning.yaml")))

    final = subprocess.run([sys.executable, "task1a.py", *map(str, command)], cwd=REPO, capture_output=True, text=True, timeout=600)
    steps["final"] = dict(status=final.returncode, stderr=final.stderr)
    steps["workspace"] = space
    return steps


@pytest.mark.slow
@pytest.mark.e2e
def test_kill_during_feature_extraction_then_rerun_resumes(kill_chain, reference):
    killed = kill_chain["features"]
    assert killed["killed"] and killed["status"] == -signal.SIGKILL, killed["stderr"][-3000:]
    # the store a kill left behind opens, holds part of the files, and says it is not complete
    assert 0 < killed["stored"] < killed["planned"] and not killed["complete"]
    resumed = kill_chain["training"]["stderr"]
    assert re.search(rf"features: resuming .* \({killed['stored']} of {killed['planned']} files already extracted\)", resumed), resumed[-3000:]
    # the completed store is row for row the store of the uninterrupted run: nothing lost, doubled or corrupt
    store, expected = kill_chain["workspace"].store(), reference.store()
    assert store.is_complete and not store.failed and sorted(store.keys) == sorted(expected.keys) and len(store) == len(expected)
    keys = expected.keys
    assert np.array_equal(store.read(store.rows_of(keys)), expected.read(expected.rows_of(keys)))


@pytest.mark.slow
@pytest.mark.e2e
def test_kill_during_training_then_rerun_resumes_from_the_checkpoint(kill_chain, reference):
    killed = kill_chain["training"]
    assert killed["killed"] and killed["status"] == -signal.SIGKILL and not killed["finished"], killed["stderr"][-3000:]
    epoch = killed["checkpoint_epoch"]
    assert 1 <= epoch <= EPOCHS
    assert re.search(rf"resuming from .*checkpoint.npz after epoch {epoch}", kill_chain["testing"]["stderr"]), kill_chain["testing"]["stderr"][-3000:]
    # deterministic training resumed mid-way ends with the very weights and model of the uninterrupted run
    space = kill_chain["workspace"]
    with np.load(only(space.outputs("learner/*/seed_0/checkpoint.npz"))) as mine, np.load(only(reference.outputs("learner/*/seed_0/checkpoint.npz"))) as theirs:
        arrays = [key for key in theirs.files if key != "state"]
        assert sorted(mine.files) == sorted(theirs.files)
        for key in arrays:
            assert np.array_equal(mine[key], theirs[key]), key
    for name in ("model_float.tflite", "model_int8.tflite"):
        assert only(space.outputs(f"learner/*/seed_0/{name}")).read_bytes() == only(reference.outputs(f"learner/*/seed_0/{name}")).read_bytes()


@pytest.mark.slow
@pytest.mark.e2e
def test_kill_during_testing_then_rerun_gives_the_same_results(kill_chain, reference):
    killed = kill_chain["testing"]
    assert killed["killed"] and killed["status"] == -signal.SIGKILL, killed["stderr"][-3000:]
    # killed inside testing: no output yet
    assert killed["learned"] and killed["outputs"] == [] and killed["results"] == [], (killed["learned"], killed["outputs"], killed["results"])
    final = kill_chain["final"]
    assert final["status"] == 0, final["stderr"][-3000:]
    assert "features: reusing" in final["stderr"] and "learning: reusing" in final["stderr"]
    assert re.search(r"testing: \d+ files ->", final["stderr"])
    space = kill_chain["workspace"]
    mine = only(space.outputs("recognizer/*/seed_0/output.csv"))
    theirs = only(reference.outputs("recognizer/*/seed_0/output.csv"))
    assert mine.read_bytes() == theirs.read_bytes()
    assert len(read_table(mine)) == (EVALUATE_REPLICAS + 1) * 90 + 2
    results, expected = (yaml.safe_load(only(s.outputs("evaluator/*/seed_0/results.yaml")).read_text()) for s in (space, reference))
    for key in ("overall_accuracy", "overall_logloss", "class_wise", "device_wise"):
        assert results[key] == expected[key], key
