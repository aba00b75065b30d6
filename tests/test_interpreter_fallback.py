"""Where ai-edge-litert has no wheel (pyproject.toml's marker leaves it out), TFLite models run in
TensorFlow's own interpreter, said once in the log."""

import logging
import sys


def test_without_litert_tensorflows_interpreter_is_used_and_said_once(monkeypatch, caplog):
    import tensorflow as tf

    from utils import tflite

    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)  # as on a platform without the package
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    monkeypatch.delattr(tflite._interpreter_class, "told", raising=False)
    logger = logging.getLogger("utils.tflite")
    logger.addHandler(caplog.handler)  # the project's loggers may not propagate (a run's logging set up earlier)
    try:
        with caplog.at_level(logging.INFO, logger="utils.tflite"):
            assert tflite._interpreter_class() is tf.lite.Interpreter
            assert tflite._interpreter_class() is tf.lite.Interpreter
    finally:
        logger.removeHandler(caplog.handler)
    said = {id(r): r.getMessage() for r in caplog.records if "tf.lite.Interpreter" in r.getMessage()}  # a record seen twice is one
    assert len(said) == 1 and "ai-edge-litert is not installed" in next(iter(said.values()))
    monkeypatch.undo()
    from ai_edge_litert.interpreter import Interpreter

    assert tflite._interpreter_class() is Interpreter
