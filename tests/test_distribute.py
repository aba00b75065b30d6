"""Distributed learning (learner.distribute): two multi-worker processes on 127.0.0.1, mirrored on the CPU.

The multi-worker test starts this file as a script, once per worker, each with its own TF_CONFIG
(MultiWorkerMirroredStrategy must be created before TensorFlow runs anything, so never inside
pytest's process).
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_DIR))
sys.path.insert(0, str(REPO_DIR / "tests"))

from test_learning import CLASS_COUNT, small_cnn_parameters, toy_problem  # noqa: E402

WORKERS = 2
TRAIN, VALIDATION, BATCH = 41, 20, 8  # 6 batches, the last of one example: one worker gets none of it
SEED = 3
WORKER_TIMEOUT_S = 240


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_worker(index: int, model_dir: Path, report_dir: Path) -> None:
    """One worker: record the example ids its replica gets per step of an epoch, then train one epoch."""
    from utils.learning import batch_dataset, distribution_strategy, epoch_order, is_chief, smooth_labels, train_model

    strategy = distribution_strategy("multi_worker")
    X, y = toy_problem(TRAIN + VALIDATION, seed=SEED)  # the same data on every worker

    # Sharding: features whose value is the example's index, fed as training feeds them.
    ids = np.broadcast_to(np.arange(TRAIN, dtype=np.float32)[:, None, None], (TRAIN, 40, 51))
    order = epoch_order(TRAIN, SEED, 0)
    distributed = strategy.experimental_distribute_dataset(batch_dataset(ids, smooth_labels(y[:TRAIN], CLASS_COUNT, 0.1), order, BATCH))
    steps = []
    for features, _ in distributed:
        steps.append([int(v) for local in strategy.experimental_local_results(features) for v in local.numpy()[:, 0, 0, 0]])

    result = train_model(small_cnn_parameters(epochs=1, initial_delay=0, batch_size=BATCH), X[:TRAIN], y[:TRAIN], X[TRAIN:], y[TRAIN:],
                         model_dir, seed=SEED, progress=False, distribute="multi_worker")
    weights = result["model"].get_weights()
    np.savez(report_dir / f"weights_{index}.npz", *weights)
    report = {"chief": result["chief"], "is_chief": is_chief(strategy), "replicas": result["replicas"], "steps": steps,
              "history": result["history"], "val_accuracy": result["val_accuracy"]}
    (report_dir / f"worker_{index}.json").write_text(json.dumps(report))


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    ports = free_ports(WORKERS)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    processes = []
    for index in range(WORKERS):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
                   TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
        log = open(root / f"worker_{index}.log", "w")
        processes.append((subprocess.Popen([sys.executable, __file__, str(index), str(root / "model"), str(root)], env=env, cwd=REPO_DIR,
                                           stdout=log, stderr=subprocess.STDOUT), log))
    try:
        codes = [process.wait(timeout=WORKER_TIMEOUT_S) for process, _ in processes]
    finally:
        for process, log in processes:
            if process.poll() is None:
                process.kill()
            log.close()
    for index, code in enumerate(codes):
        assert code == 0, f"worker {index} failed:\n" + (root / f"worker_{index}.log").read_text()[-3000:]
    reports = [json.loads((root / f"worker_{i}.json").read_text()) for i in range(WORKERS)]
    weights = [list(np.load(root / f"weights_{i}.npz").values()) for i in range(WORKERS)]
    return root, reports, weights


def test_multi_worker_shards_every_global_batch_across_the_workers(cluster_run):
    _, reports, _ = cluster_run
    order = np.random.default_rng([SEED, 0]).permutation(TRAIN)  # the single-device epoch order, computed here
    global_batches = [sorted(order[start : start + BATCH].tolist()) for start in range(0, TRAIN, BATCH)]
    assert [r["replicas"] for r in reports] == [WORKERS] * WORKERS
    for step, expected in enumerate(global_batches):
        shares = [report["steps"][step] for report in reports]
        # Together the workers train on exactly the step's global batch, each example once.
        assert sorted(shares[0] + shares[1]) == expected, f"step {step}"
    assert all(len(report["steps"]) == len(global_batches) for report in reports)
    assert [len(s) for s in reports[0]["steps"][:-1]] == [BATCH // WORKERS] * (len(global_batches) - 1)


def test_multi_worker_ends_with_identical_weights_and_finite_loss(cluster_run):
    _, reports, weights = cluster_run
    assert len(weights[0]) == len(weights[1]) > 0
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)
    history = [report["history"] for report in reports]
    assert len(history[0]) == 1 and np.isfinite(history[0][0]["loss"]) and np.isfinite(history[0][0]["val_loss"])
    assert history[0][0]["loss"] == history[1][0]["loss"]  # the logged figures are reduced over the workers
    assert reports[0]["val_accuracy"] == reports[1]["val_accuracy"]


def test_only_the_chief_writes_the_output_folder(cluster_run):
    root, reports, weights = cluster_run
    assert [r["chief"] for r in reports] == [True, False] and [r["is_chief"] for r in reports] == [True, False]
    written = sorted(p.name for p in (root / "model").iterdir())
    assert written == ["checkpoint.npz", "model.keras", "training_curves.png", "training_log.csv"]
    import keras

    saved = keras.models.load_model(root / "model" / "model.keras").get_weights()
    for a, b in zip(saved, weights[1]):
        np.testing.assert_array_equal(a, b)


def test_mirrored_on_the_cpu_trains_a_working_model(tmp_path):
    from utils.learning import train_model

    X, y = toy_problem(240, seed=8)
    parameters = small_cnn_parameters(epochs=2, initial_delay=0)
    mirrored = train_model(parameters, X[:160], y[:160], X[160:], y[160:], tmp_path / "mirrored", seed=1, progress=False, distribute="mirrored")
    assert mirrored["chief"] and mirrored["replicas"] == 1
    import keras

    saved = keras.models.load_model(mirrored["model_path"])
    predicted = saved.predict_on_batch(X[160:, ..., None]).argmax(axis=1)
    assert np.mean(predicted == y[160:]) > 0.5  # 10 separable classes: chance is 0.1
    assert mirrored["val_accuracy"] == pytest.approx(np.mean(predicted == y[160:]))


def test_unknown_distribute_value_is_a_one_line_error(tmp_path):
    from utils.errors import Task1aError
    from utils.learning import train_model

    X, y = toy_problem(20, seed=4)
    with pytest.raises(Task1aError, match="learner.distribute must be one of none, mirrored, multi_worker"):
        train_model(small_cnn_parameters(epochs=1, initial_delay=0), X[:10], y[:10], X[10:], y[10:], tmp_path, progress=False, distribute="horovod")


def test_multi_worker_without_tf_config_is_a_one_line_error(monkeypatch):
    from utils.errors import Task1aError
    from utils.learning import distribution_strategy

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(Task1aError, match="TF_CONFIG"):
        distribution_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}')
    with pytest.raises(Task1aError, match="TF_CONFIG is not a valid cluster description"):
        distribution_strategy("multi_worker")


if __name__ == "__main__":
    run_worker(int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
