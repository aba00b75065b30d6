"""Distributed learning (learner.distribute): batches, lost workers, the start-up line naming the devices
(``describe_devices``, formerly test_reporting_devices.py), and real clusters on 127.0.0.1.

Multi-worker runs start worker processes (MultiWorkerMirroredStrategy must be created before
TensorFlow runs anything, so never inside pytest's process). Every wait is for an event (a file, a
log line, an exit) with a generous limit, so a slow or loaded machine changes no outcome.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_DIR))
sys.path.insert(0, str(REPO_DIR / "tests"))

from conftest import link_demo_data, tiny_demo_parameters  # noqa: E402
from test_learning import CLASS_COUNT, small_cnn_parameters, toy_problem  # noqa: E402
from utils.distribute import batch_bounds, describe_devices, device_line, lost_worker_message  # noqa: E402
from utils.errors import Task1aError  # noqa: E402
from utils.settings import learner_from_block  # noqa: E402

WORKERS = 2
TRAIN, VALIDATION, BATCH = 41, 21, 8  # 6 batches, the last of one example (fewer than the workers); validation ends with 5
SEED = 3
WORKER_TIMEOUT_S = 600  # a limit for a hang, never reached by a working run


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def cluster_environments(count=WORKERS, **extra):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(count)]}
    return [dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
                 TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", **extra) for index in range(count)]


def wait_all(processes, timeout=WORKER_TIMEOUT_S):
    try:
        return [process.wait(timeout=timeout) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()


# ------------------------------------------------------------------------------------ no cluster
def test_batch_bounds_never_leave_a_replica_without_examples():
    assert batch_bounds(41, 8) == [(0, 8), (8, 16), (16, 24), (24, 32), (32, 40), (40, 41)]  # one device: as always
    assert batch_bounds(41, 8, replicas=2) == [(0, 8), (8, 16), (16, 24), (24, 32), (32, 41)]
    assert batch_bounds(43, 8, replicas=2)[-1] == (40, 43)  # 3 examples: 2 + 1, every replica has some
    assert batch_bounds(40, 8, replicas=2)[-1] == (32, 40)
    assert batch_bounds(1, 8, replicas=2) == [(0, 1)]  # nothing to join it to
    for n, batch, replicas in ((97, 16, 4), (100, 7, 3), (5, 16, 2)):
        bounds = batch_bounds(n, batch, replicas)
        assert bounds[0][0] == 0 and bounds[-1][1] == n and all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    with pytest.raises(Task1aError):
        batch_bounds(10, 0)


def test_lost_worker_messages_name_the_peer():
    config = {"cluster": {"worker": ["127.0.0.1:1111", "127.0.0.1:2222"]}, "task": {"type": "worker", "index": 0}}
    error = RuntimeError("Collective ops is aborted by: The following tasks are unhealthy (stopped sending heartbeats):\n/job:worker/replica:0/task:1\n"
                         "Additional GRPC error information from remote target /job:worker/replica:0/task:0")
    message = lost_worker_message(error, config)
    assert "lost worker 1 (127.0.0.1:2222)" in message and "worker 0" not in message and "\n" not in message
    assert lost_worker_message(ValueError("shapes do not match"), config) is None


def test_mirrored_on_the_cpu_trains_a_working_model(tmp_path):
    import keras

    from utils.learning import train_model

    X, y = toy_problem(240, seed=8)
    settings = learner_from_block(small_cnn_parameters(epochs=3, initial_delay=0))
    mirrored = train_model(settings, X[:160], y[:160], X[160:], y[160:], tmp_path / "mirrored", seed=1, progress=False, distribute="mirrored")
    assert mirrored.chief and mirrored.replicas == 1
    saved = keras.models.load_model(mirrored.model_path)
    predicted = saved.predict_on_batch(X[160:, ..., None]).argmax(axis=1)
    assert np.mean(predicted == y[160:]) > 0.5  # 10 separable classes: chance is 0.1
    assert mirrored.val_accuracy == pytest.approx(np.mean(predicted == y[160:]))


def test_unknown_distribute_value_is_a_one_line_error():
    """Refused when the parameters are read (the registry), before any work; training trusts learner.distribute."""
    from utils.parameters import ParameterContainer, command_line_layer

    with pytest.raises(Task1aError, match="'learner.distribute' must be one of none, mirrored, multi_worker, got 'horovod'") as raised:
        command_line_layer(["learner.distribute=horovod"], ParameterContainer().defaults)
    assert "\n" not in str(raised.value)


def test_multi_worker_without_tf_config_is_a_one_line_error(monkeypatch):
    from utils.distribute import distribution_strategy

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(Task1aError, match="TF_CONFIG"):
        distribution_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}')
    with pytest.raises(Task1aError, match="TF_CONFIG is not a valid cluster description"):
        distribution_strategy("multi_worker")


def test_no_module_patches_keras_internals():
    sources = [*REPO_DIR.glob("*.py"), *REPO_DIR.glob("utils/*.py"), *REPO_DIR.glob("bench/*.py"), *REPO_DIR.glob("model_size_calculation/*.py")]
    assert sources
    for path in sources:
        assert "keras.src" not in path.read_text(encoding="utf-8"), path


# ------------------------------------------------------------------ the devices training uses
def test_device_lines():
    assert device_line([], 2) == "training on CPU (2 cores)"
    assert device_line([], 1) == "training on CPU (1 core)"
    assert device_line(["NVIDIA H200"], 16) == "training on 1 GPU: NVIDIA H200"
    assert device_line(["NVIDIA H200", "NVIDIA H200"], 16) == \
        "training on 1 GPU: NVIDIA H200 (of 2 visible; learner.distribute: mirrored uses all)"
    assert device_line(["NVIDIA H200", "NVIDIA A100"], 16, "mirrored", 2) == \
        "training mirrored over 2 GPUs: NVIDIA H200, NVIDIA A100"
    assert device_line([], 2, "mirrored", 1) == "training mirrored on CPU (2 cores): no GPU visible"
    assert device_line(["NVIDIA H200"], 16, "multi_worker", 4) == \
        "training multi-worker, 4 replicas in sync; this worker on 1 GPU: NVIDIA H200"


def test_describe_devices_of_this_machine():
    tf = pytest.importorskip("tensorflow")
    gpus = tf.config.list_physical_devices("GPU")
    line = describe_devices(None)
    if gpus:
        assert line.startswith("training on 1 GPU: ")
    else:
        assert line.startswith("training on CPU (") and line.endswith((" cores)", " core)"))
    from utils.distribute import distribution_strategy

    mirrored = describe_devices(distribution_strategy("mirrored"))
    assert mirrored.startswith("training mirrored over ") if gpus else mirrored.endswith("): no GPU visible")


# ----------------------------------------------------------------------- train_model on a cluster
def run_worker(index: int, model_dir: Path, report_dir: Path) -> None:
    """One worker: record the example ids its replica gets per step of an epoch, then train two epochs."""
    from utils.distribute import distribution_strategy, is_chief
    from utils.learning import EpochFeed, smooth_labels, train_model

    strategy = distribution_strategy("multi_worker")
    X, y = toy_problem(TRAIN + VALIDATION, seed=SEED)  # the same data on every worker

    # Sharding: features whose value is the example's index, fed as training feeds them.
    ids = np.broadcast_to(np.arange(TRAIN, dtype=np.float32)[:, None, None], (TRAIN, 40, 51))
    feed = EpochFeed(ids, smooth_labels(y[:TRAIN], CLASS_COUNT, 0.1), BATCH, seed=SEED, shuffle=True, replicas=strategy.num_replicas_in_sync)
    steps = []
    for features, _ in strategy.experimental_distribute_dataset(feed.dataset()):
        steps.append([int(v) for local in strategy.experimental_local_results(features) for v in local.numpy()[:, 0, 0, 0]])

    result = train_model(learner_from_block(small_cnn_parameters(epochs=2, initial_delay=0, batch_size=BATCH)), X[:TRAIN], y[:TRAIN], X[TRAIN:], y[TRAIN:],
                         model_dir, seed=SEED, progress=False, distribute="multi_worker")
    np.savez(report_dir / f"weights_{index}.npz", *result.model.get_weights())
    report = {"chief": result.chief, "is_chief": is_chief(strategy), "replicas": result.replicas, "steps": steps,
              "history": result.history, "val_accuracy": result.val_accuracy}
    (report_dir / f"worker_{index}.json").write_text(json.dumps(report))


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    processes, logs = [], []
    for index, env in enumerate(cluster_environments()):
        logs.append(open(root / f"worker_{index}.log", "w"))
        processes.append(subprocess.Popen([sys.executable, __file__, str(index), str(root / "model"), str(root)], env=env, cwd=REPO_DIR,
                                          stdout=logs[-1], stderr=subprocess.STDOUT))
    codes = wait_all(processes)
    for log in logs:
        log.close()
    for index, code in enumerate(codes):
        assert code == 0, f"worker {index} failed:\n" + (root / f"worker_{index}.log").read_text()[-3000:]
    reports = [json.loads((root / f"worker_{i}.json").read_text()) for i in range(WORKERS)]
    weights = [list(np.load(root / f"weights_{i}.npz").values()) for i in range(WORKERS)]
    return root, reports, weights


@pytest.mark.slow
def test_multi_worker_shards_every_global_batch_across_the_workers(cluster_run):
    _, reports, _ = cluster_run
    order = np.random.default_rng([SEED, 0]).permutation(TRAIN)  # the single-device epoch order, computed here
    global_batches = [sorted(order[start:stop].tolist()) for start, stop in [(0, 8), (8, 16), (16, 24), (24, 32), (32, 41)]]
    assert [r["replicas"] for r in reports] == [WORKERS] * WORKERS
    assert all(len(report["steps"]) == len(global_batches) for report in reports)
    for step, expected in enumerate(global_batches):
        shares = [report["steps"][step] for report in reports]
        # Together the workers train on exactly the step's global batch, each example once, none empty-handed.
        assert sorted(shares[0] + shares[1]) == expected, f"step {step}"
        assert all(shares), f"step {step}: a worker got no example"


@pytest.mark.slow
def test_multi_worker_ends_with_identical_weights_and_finite_loss(cluster_run):
    _, reports, weights = cluster_run
    assert len(weights[0]) == len(weights[1]) > 0
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)
    history = [report["history"] for report in reports]
    assert len(history[0]) == 2 and all(np.isfinite(row["loss"]) and np.isfinite(row["val_loss"]) for row in history[0])
    assert history[0][-1]["loss"] == history[1][-1]["loss"]  # the logged figures are reduced over the workers
    assert reports[0]["val_accuracy"] == reports[1]["val_accuracy"]


@pytest.mark.slow
def test_only_the_chief_writes_the_output_folder(cluster_run):
    import keras

    root, reports, weights = cluster_run
    assert [r["chief"] for r in reports] == [True, False] and [r["is_chief"] for r in reports] == [True, False]
    written = sorted(p.name for p in (root / "model").iterdir())
    assert written == ["checkpoint.npz", "model.keras", "training_curves.png", "training_log.csv"]
    saved = keras.models.load_model(root / "model" / "model.keras").get_weights()
    for a, b in zip(saved, weights[1]):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- task1a.py on a cluster
def multi_worker_parameters(root: Path, epochs: int, demo_data: Path) -> Path:
    link_demo_data(demo_data, root)  # the shared tiny demo dataset (conftest), not generated again
    overrides = {
        "defaults": {
            "path": {"system": str(root / "system"), "log": str(root / "log")},
            "general": {"energy": False},
            "learner": {"distribute": "multi_worker"},
            "dataset_method_parameters": tiny_demo_parameters(root)["defaults"]["dataset_method_parameters"],  # the shared demo data's
            "learner_method_parameters": {"cnn": {"conversion": {"representative_examples": 10}}},
        },
        "sets": [{"set_id": "demo", "learner_method_parameters": {"cnn": {"fit": {"epochs": epochs}, "model_selection": {"initial_delay": 0}}}}],
    }
    path = root / "multi.yaml"
    path.write_text(yaml.safe_dump(overrides))
    return path


def start_workers(root: Path, param_file: Path, environments, *extra):
    processes = []
    for index, env in enumerate(environments):
        out = open(root / f"worker_{index}.out", "w")
        processes.append(subprocess.Popen([sys.executable, "task1a.py", "-s", "demo", "-p", str(param_file), "--no_progress", *extra],
                                          env=env, cwd=REPO_DIR, stdout=out, stderr=subprocess.STDOUT))
        out.close()
    return processes


@pytest.mark.slow
@pytest.mark.e2e
def test_two_workers_of_the_same_command_share_a_fresh_system_folder(tmp_path, demo_data):
    param_file = multi_worker_parameters(tmp_path, epochs=2, demo_data=demo_data)
    codes = wait_all(start_workers(tmp_path, param_file, cluster_environments(), "-o"))
    outputs = [(tmp_path / f"worker_{i}.out").read_text() for i in range(WORKERS)]
    assert codes == [0, 0], "\n\n".join(o[-3000:] for o in outputs)
    # Only the chief extracted features, tested and evaluated; the other trained with it and waited.
    assert "features: extracting" in outputs[0] and "features: extracting" not in outputs[1]
    assert "features: reusing" in outputs[1]
    assert "this worker is done" in outputs[1] and "testing:" not in outputs[1] and "report:" not in outputs[1]
    for index in range(WORKERS):
        assert "epoch 1/2:" in outputs[index] and "epoch 2/2:" in outputs[index]
        assert "coordination" not in outputs[index].lower() and "Traceback" not in outputs[index]
    results = list((tmp_path / "system" / "evaluator").glob("*/seed_0/results.yaml"))
    assert len(results) == 1 and yaml.safe_load(results[0].read_text())["synthetic"] is True


@pytest.mark.slow
def test_a_worker_whose_peer_is_killed_exits_within_a_minute_naming_it(tmp_path, demo_data):
    param_file = multi_worker_parameters(tmp_path, epochs=500, demo_data=demo_data)  # far longer than the test waits
    processes = start_workers(tmp_path, param_file, cluster_environments())
    chief_out = tmp_path / "worker_0.out"
    try:
        deadline = time.monotonic() + WORKER_TIMEOUT_S
        while "epoch 2/500:" not in chief_out.read_text():  # training is under way on both
            assert processes[0].poll() is None and processes[1].poll() is None, chief_out.read_text()[-3000:]
            assert time.monotonic() < deadline, "training never started"
            time.sleep(0.5)
        processes[1].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        code = processes[0].wait(timeout=120)
        waited = time.monotonic() - killed
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    text = chief_out.read_text()
    assert code != 0
    assert waited < 60, f"the chief took {waited:.0f} s to notice"
    assert [line for line in text.splitlines() if "lost worker 1 (127.0.0.1:" in line], text[-3000:]


@pytest.mark.slow
def test_a_worker_whose_peer_never_starts_names_it(tmp_path, demo_data):
    param_file = multi_worker_parameters(tmp_path, epochs=1, demo_data=demo_data)
    environment = cluster_environments(TASK1A_JOIN_TIMEOUT_S="5")[0]
    code = wait_all(start_workers(tmp_path, param_file, [environment]), timeout=120)[0]
    text = (tmp_path / "worker_0.out").read_text()
    assert code != 0
    assert "worker 1 (127.0.0.1:" in text and "did not join the cluster within 5 s" in text, text[-3000:]


if __name__ == "__main__":
    run_worker(int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
