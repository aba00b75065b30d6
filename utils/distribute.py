"""Distribution: ``learner.distribute`` on TensorFlow's own engine, and the workers of a cluster.

Owns everything about more than one device or machine:

- :func:`distribution_strategy`: ``none`` (no strategy), ``mirrored`` (``tf.distribute.MirroredStrategy``,
  every GPU of one machine, the CPU when there is none) and ``multi_worker``
  (``tf.distribute.MultiWorkerMirroredStrategy`` over the cluster in ``TF_CONFIG``), one per process;
- :class:`WorkerGroup`: who the chief is, and the few points where workers wait for each other
  (the chief prepares data and features while the others wait; the chief's decisions are theirs);
  a worker whose peer is lost or never joins stops with one line naming it;
- :func:`batch_bounds`: the batches of an epoch such that no replica ever gets an empty share;
- :func:`replica_logs_model`: the wrapper ``model.fit`` trains on a multi-worker cluster.

The global batch stays ``fit.batch_size``: each replica gets an (as even as possible) part of it and
the gradients are all-reduced, so a step trains on exactly the global batch of the single-device
run. Batch normalisation is synchronised over the replicas (statistics of the global batch, as on
one device). Every worker builds the same batches in the same (seed, epoch) order and keeps its
replicas' share (auto-shard policy DATA).

Nothing here patches Keras: on a multi-worker cluster the network is wrapped in a small
``keras.Model`` (:func:`replica_logs_model`) built outside the strategy scope, whose ``train_step`` and
``test_step`` (the documented way to customise ``fit``) return their per-step logs as 1-element
vectors, which Keras' cross-worker mean of step logs (a reduction along axis 0) accepts. Epoch
figures come from the metrics' own variables, aggregated over every worker.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import zlib
from pathlib import Path

import numpy as np

from utils.errors import Task1aError

LOGGER = logging.getLogger(__name__)

DISTRIBUTE_KEY = "learner.distribute"
# How long a worker waits for every peer to join the cluster before it gives up and names them
# (environment variable TASK1A_JOIN_TIMEOUT_S to change it).
JOIN_TIMEOUT_S = 60.0
TF_CONFIG_EXAMPLE = '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'

_STRATEGIES: dict = {}  # one strategy per process: MultiWorkerMirroredStrategy may be created only once


# ------------------------------------------------------------------------------------------ batches
def batch_bounds(n: int, batch_size: int, replicas: int = 1) -> list[tuple[int, int]]:
    """``(start, stop)`` of each batch of an epoch of ``n`` examples.

    Batches of ``batch_size``; the last one holds the rest. With ``replicas`` > 1 a last batch of
    fewer than ``replicas`` examples would leave a replica with nothing to train on (which
    synchronised batch normalisation cannot do), so it is joined to the batch before it. With one
    replica (or a remainder of at least ``replicas``) these are exactly the single-device batches.
    """
    if n < 1 or batch_size < 1 or replicas < 1:
        raise Task1aError(f"batches need n, batch_size and replicas >= 1, got {n}, {batch_size}, {replicas}")
    bounds = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < replicas:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


# ------------------------------------------------------------------------------------- strategies
def check_tf_config() -> dict:
    """The ``TF_CONFIG`` cluster description multi-worker training needs, validated."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise Task1aError(f"{DISTRIBUTE_KEY} multi_worker needs the TF_CONFIG environment variable on every worker, e.g. TF_CONFIG='{TF_CONFIG_EXAMPLE}'")
    try:
        config = json.loads(raw)
        cluster = config["cluster"]
        task_type, task_index = config["task"]["type"], int(config["task"]["index"])
        if not isinstance(cluster.get("worker", []), list) or task_type not in cluster or not 0 <= task_index < len(cluster[task_type]):
            raise ValueError("the task is not in the cluster")
    except (ValueError, KeyError, TypeError) as exc:
        raise Task1aError(f"TF_CONFIG is not a valid cluster description ({exc}); set it as {TF_CONFIG_EXAMPLE} (this worker's index in task)") from None
    return config


def distribution_strategy(distribute: str):
    """The ``tf.distribute`` strategy of ``learner.distribute`` (``none``, ``mirrored`` or ``multi_worker``: the
    registry's choices, checked when the parameters were read): None for ``none``, else created once per process."""
    if distribute == "none":
        return None
    if distribute not in ("mirrored", "multi_worker"):
        raise ValueError(f"unknown distribution {distribute!r} (learner.distribute is none, mirrored or multi_worker)")
    if distribute not in _STRATEGIES:
        import tensorflow as tf

        if distribute == "mirrored":
            _STRATEGIES[distribute] = tf.distribute.MirroredStrategy()
        else:
            config = check_tf_config()
            with _join_watchdog(config):
                try:
                    _STRATEGIES[distribute] = tf.distribute.MultiWorkerMirroredStrategy()
                except RuntimeError as exc:  # "Collective ops must be configured at program startup"
                    raise Task1aError(f"{DISTRIBUTE_KEY} multi_worker: {str(exc).splitlines()[0]}; run the training in a fresh process (TensorFlow must not "
                                      "have run anything before)") from exc
                # Strategy creation returns before every peer has joined: the first collective waits for them.
                _all_gather(_STRATEGIES[distribute], 1)
        LOGGER.info("%s: %d replicas in sync", distribute, _STRATEGIES[distribute].num_replicas_in_sync)
    return _STRATEGIES[distribute]


def replica_count(strategy) -> int:
    return strategy.num_replicas_in_sync if strategy is not None else 1


def is_chief(strategy) -> bool:
    """Whether this process writes the outputs: always, except on a multi-worker cluster's non-chief workers.

    TensorFlow's rule: the ``chief`` task, or worker 0 when the cluster has no ``chief``.
    """
    resolver = getattr(strategy, "cluster_resolver", None) if strategy is not None else None
    cluster = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if not cluster:
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in cluster)


def _all_gather(strategy, value: int) -> np.ndarray:
    """``value`` of every replica of every worker (a collective: every worker must call it)."""
    import tensorflow as tf

    values = strategy.experimental_distribute_values_from_function(lambda context: tf.constant([value], dtype=tf.int64))
    return strategy.gather(values, axis=0).numpy()


# ------------------------------------------------------------------------------- lost workers
def _peer_addresses(config: dict) -> list[tuple[str, str]]:
    """``(task name, address)`` of every task of the cluster but this one."""
    me = (config["task"]["type"], int(config["task"]["index"]))
    return [(f"{job} {index}", address) for job, addresses in config["cluster"].items() if isinstance(addresses, list)
            for index, address in enumerate(addresses) if (job, index) != me]


def _exit_now(message: str) -> None:
    """Say ``message`` in one line and end the process at once (TensorFlow would wait for the lost peer at exit)."""
    handlers = logging.getLogger("utils").handlers
    if handlers:  # the command line's console and log file
        LOGGER.error(message)
        for handler in handlers:
            handler.flush()
    else:
        print(f"error: {message}", file=sys.stderr, flush=True)
    os._exit(1)


# The watchdog is a child process: while TensorFlow waits for the cluster to form it holds the GIL,
# so no thread or signal handler of this process could run. The child waits for the parent to close
# its stdin (the cluster formed, or the parent ended); after the timeout it names the peers that do
# not listen, and kills the parent.
_WATCHDOG_CODE = r"""
import os, signal, socket, sys, threading
parent, timeout, message = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
waiting = threading.Thread(target=sys.stdin.buffer.read, daemon=True)
waiting.start()
waiting.join(timeout)
if not waiting.is_alive():
    sys.exit(0)
def listening(address):
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=2).close()
        return True
    except (OSError, ValueError):
        return False
missing = [peer for peer in sys.argv[4:] if not listening(peer.rsplit("(", 1)[-1].rstrip(")"))]
who = ", ".join(missing) if missing else "a peer (its address answers, but it did not join)"
print("error: " + message.replace("{who}", who), file=sys.stderr, flush=True)
os.kill(parent, signal.SIGKILL)
os._exit(0)  # the reading thread still holds stdin
"""


class _join_watchdog:
    """Ends the process with one line naming the missing peers when the cluster has not formed in time."""

    def __init__(self, config: dict, timeout_s: float | None = None):
        self.config = config
        self.timeout_s = timeout_s if timeout_s is not None else float(os.environ.get("TASK1A_JOIN_TIMEOUT_S", JOIN_TIMEOUT_S))
        self.child = None

    def __enter__(self):
        import subprocess

        message = (f"{DISTRIBUTE_KEY} multi_worker: {{who}} did not join the cluster within {self.timeout_s:.0f} s; "
                   "start every worker of TF_CONFIG with the same command, or check the addresses")
        peers = [f"{name} ({address})" for name, address in _peer_addresses(self.config)]
        try:  # its error line goes where the application's own lines go (descriptor 2 may be the log file: utils.console)
            console = sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):
            console = None
        self.child = subprocess.Popen([sys.executable, "-c", _WATCHDOG_CODE, str(os.getpid()), str(self.timeout_s), message, *peers],
                                      stdin=subprocess.PIPE, stderr=console)
        return self

    def __exit__(self, *exc):
        self.child.stdin.close()
        self.child.wait()
        return False


_TASK_IN_MESSAGE = re.compile(r"/job:(\w+)/replica:\d+/task:(\d+)")


_LOST_PEER_SIGNS = ("unhealthy", "heartbeat", "Collective ops is aborted", "Socket closed", "Connection reset", "failed to connect", "UNAVAILABLE")


def lost_worker_message(exc: BaseException, config: dict | None = None) -> str | None:
    """One line naming the lost peer(s) of a TensorFlow collective error, or None when it is no such error.

    ``config`` is the TF_CONFIG cluster description (default: the environment's).
    """
    text = str(exc)
    if not any(sign.lower() in text.lower() for sign in _LOST_PEER_SIGNS):
        return None
    if config is None:
        config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    me = (config.get("task", {}).get("type"), str(config.get("task", {}).get("index")))
    tasks = sorted({task for task in _TASK_IN_MESSAGE.findall(text) if task != me})
    names = []
    for job, index in tasks:
        addresses = config.get("cluster", {}).get(job, [])
        address = addresses[int(index)] if int(index) < len(addresses) else "?"
        names.append(f"{job} {index} ({address})")
    who = ", ".join(names) if names else "a peer worker"
    return (f"{DISTRIBUTE_KEY} multi_worker: lost {who}; the cluster cannot go on without it: restart every worker with the same command to resume "
            "from the last checkpoint")


# ------------------------------------------------------------------------------------ the group
class WorkerGroup:
    """The workers of one run: a single process for ``none``/``mirrored``, the TF_CONFIG cluster for ``multi_worker``.

    ``chief`` writes every output; the others train with it and wait for it. The points where they
    wait are collectives, so a lost peer surfaces there as one line (:meth:`collective`).
    """

    def __init__(self, distribute: str = "none"):
        self.distribute = distribute
        self.strategy = distribution_strategy(distribute) if distribute == "multi_worker" else None
        self.chief = is_chief(self.strategy)

    @property
    def multi_worker(self) -> bool:
        return self.strategy is not None

    def chief_value(self, value: int) -> int:
        """The chief's ``value``, on every worker (the chief's decision becomes everyone's)."""
        if not self.multi_worker:
            return int(value)
        with self.collective():
            return int(_all_gather(self.strategy, int(value))[0])

    def agree(self, value: int) -> bool:
        """Whether every worker holds the same ``value``."""
        if not self.multi_worker:
            return True
        with self.collective():
            gathered = _all_gather(self.strategy, int(value))
        return bool(np.all(gathered == gathered[0]))

    def barrier(self) -> None:
        """Wait until every worker has come here."""
        self.chief_value(0)

    def chief_first(self, work, *args, **kwargs):
        """Run ``work`` on the chief while the others wait, then on the others (which then find its results)."""
        if self.chief:
            result = work(*args, **kwargs)
            self.barrier()
            return result
        self.barrier()
        return work(*args, **kwargs)

    def collective(self):
        return _LostWorkerGuard(self.multi_worker)

    def finish(self) -> None:
        """The end of a run: every worker waits here for the chief's last output, so all exit together."""
        if self.multi_worker:
            self.barrier()


class _LostWorkerGuard:
    """Turns TensorFlow's error for a lost peer into one line, and ends the process (see :func:`_exit_now`)."""

    def __init__(self, active: bool):
        self.active = active

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.active and exc is not None and not isinstance(exc, Task1aError):
            message = lost_worker_message(exc)
            if message:
                _exit_now(message)
        return False


def checkpoint_code(path: Path) -> int:
    """A checksum of the checkpoint a worker would resume from (0: none), to check that all see the same."""
    return zlib.crc32(path.read_bytes()) + 1 if path.is_file() else 0


# --------------------------------------------------------------------------------- the wrapper
def replica_logs_model(network):
    """``network`` wrapped for ``fit`` on a multi-worker cluster (see the module docstring).

    Build it outside the strategy's scope (its own variables are those of ``network``, created in the
    scope) and call ``compile`` and ``fit`` inside the scope.
    """
    import keras
    import tensorflow as tf

    class ReplicaLogsModel(keras.Model):
        def __init__(self, inner, **kwargs):
            super().__init__(**kwargs)
            self.network = inner

        def call(self, inputs, training=False):
            return self.network(inputs, training=training)

        def train_step(self, data):
            return {name: tf.reshape(value, [1]) for name, value in super().train_step(data).items()}

        def test_step(self, data):
            return {name: tf.reshape(value, [1]) for name, value in super().test_step(data).items()}

    return ReplicaLogsModel(network, name="replica_logs")


def batch_normalization_layers(layer) -> list:
    """Every BatchNormalization layer in ``layer`` (nested models included)."""
    import keras

    found = [layer] if isinstance(layer, keras.layers.BatchNormalization) else []
    for child in getattr(layer, "layers", []):
        found += batch_normalization_layers(child)
    return found




# ------------------------------------------------------------------------------- the start-up line
def device_line(gpu_names: list[str], cores: int, kind: str = "none", replicas: int = 1) -> str:
    """The start-up line naming the devices training uses (pure: the facts come from :func:`describe_devices`).

    ``gpu_names``: the GPUs the training runs on (for ``none``: every GPU TensorFlow sees, of which
    it uses the first); ``kind``: ``learner.distribute``; ``replicas``: replicas in sync (multi-worker:
    over every worker).
    """
    cpu = f"CPU ({cores} core{'s' if cores != 1 else ''})"
    if kind == "multi_worker":
        here = f"{len(gpu_names)} GPU{'s' if len(gpu_names) != 1 else ''}: {', '.join(gpu_names)}" if gpu_names else cpu
        return f"training multi-worker, {replicas} replicas in sync; this worker on {here}"
    if kind == "mirrored" and gpu_names:
        return f"training mirrored over {len(gpu_names)} GPU{'s' if len(gpu_names) != 1 else ''}: {', '.join(gpu_names)}"
    if kind == "mirrored":
        return f"training mirrored on {cpu}: no GPU visible"
    if not gpu_names:
        return f"training on {cpu}"
    others = f" (of {len(gpu_names)} visible; {DISTRIBUTE_KEY}: mirrored uses all)" if len(gpu_names) > 1 else ""
    return f"training on 1 GPU: {gpu_names[0]}{others}"


def describe_devices(strategy=None) -> str:
    """One line naming the devices training will use with ``strategy`` (None: TensorFlow's default
    placement, the first GPU when there is one), e.g. ``training on CPU (2 cores)``,
    ``training on 1 GPU: NVIDIA H200``, ``training mirrored over 2 GPUs: ...``."""
    import tensorflow as tf

    from utils.files import usable_cores

    physical = tf.config.list_physical_devices("GPU")

    def name(index: int) -> str:
        details = tf.config.experimental.get_device_details(physical[index]) if index < len(physical) else {}
        return details.get("device_name") or f"GPU:{index}"

    if strategy is None:
        return device_line([name(index) for index in range(len(physical))], usable_cores())
    kind = "multi_worker" if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) else "mirrored"
    devices = [device for device in strategy.extended.worker_devices if "GPU" in device.upper()]
    indices = [int(match.group(1)) for match in (re.search(r"GPU:(\d+)$", device, re.I) for device in devices) if match]
    return device_line([name(index) for index in indices], usable_cores(), kind, replica_count(strategy))
