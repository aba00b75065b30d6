"""The start-up line naming the devices training uses (``utils.distribute.describe_devices``)."""

import pytest

from utils.distribute import describe_devices, device_line


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
