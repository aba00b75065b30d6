"""What reaches the console: the application's own lines, never TensorFlow's.

TensorFlow, XLA, absl, oneDNN, the CUDA probe and the TFLite converter write from C++ straight to
file descriptor 2 (``WARNING: All log messages before absl::InitializeLog()``, ``oneDNN custom
operations are on``, ``failed call to cuInit``, ``fully_quantize: 0, inference_type: 6``...), below
anything Python's ``sys.stderr`` or logging can filter, and in part whatever ``TF_CPP_MIN_LOG_LEVEL``
says. A command-line run therefore:

- sets ``TF_CPP_MIN_LOG_LEVEL`` / ``ABSL_MIN_LOG_LEVEL`` before TensorFlow loads (less to write);
- points file descriptor 2 (what C++ code and worker processes inherit) at a temporary file, then,
  once the run's log file is known, appends that to the log file and points descriptor 2 at the log
  file itself: whatever a library writes there is kept, in the log, never on the console;
- keeps ``sys.stderr`` (the application's console lines, progress bars, ``error:`` lines) on the
  terminal through a duplicate of the original descriptor;
- sends the Python-side records of other libraries (``tensorflow``, ``absl``, ``py.warnings``,
  codecarbon...) through the root logger to the same descriptor, i.e. into the log file.

``--debug`` skips all of it: every line of every library reaches the console. Library use (tests,
notebooks) is untouched unless :func:`divert_library_output` is called; :func:`restore` undoes it.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile

# Records of other libraries (the root logger's) in the log file: name and level say where they come from.
LIBRARY_LOG_FORMAT = "%(asctime)s %(levelname)-8s %(name)s (library): %(message)s"
_LIBRARY_HANDLER_FLAG = "_task1a_library_output"


class _Diversion:
    """The state of one diversion: the saved descriptor 2, the console stream, the early capture file."""

    def __init__(self) -> None:
        self.saved_fd: int | None = None       # the original descriptor 2 (the terminal)
        self.saved_stderr = None               # the sys.stderr object before
        self.capture = None                    # temporary file holding descriptor 2's output until the log is known
        self.log_path: str | None = None
        self.captured_warnings = False


_active: _Diversion | None = None


def quiet_environment() -> None:
    """Fewer lines from TensorFlow's C++ side, set before it loads (a user's own values are kept)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")   # INFO and WARNING of TensorFlow's C++ logging off
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "2")     # the same for absl's C++ logging (XLA, tsl)


def divert_library_output() -> None:
    """From now on descriptor 2 goes to a temporary file (later the log file, :func:`attach_log_file`);
    ``sys.stderr`` stays on the terminal. Call before TensorFlow loads; a second call does nothing."""
    global _active
    if _active is not None:
        return
    quiet_environment()
    state = _Diversion()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    state.saved_stderr = sys.stderr
    state.saved_fd = os.dup(2)
    state.capture = tempfile.TemporaryFile(prefix="task1a_stderr_")
    os.dup2(state.capture.fileno(), 2)
    if _writes_to_fd(sys.stderr, 2):  # the console stream must not follow descriptor 2 into the file
        sys.stderr = open(os.dup(state.saved_fd), "w", buffering=1, encoding=getattr(state.saved_stderr, "encoding", None) or "utf-8",
                          errors="backslashreplace")
    _install_library_handler()
    logging.captureWarnings(True)  # warnings.warn of libraries: into the log (py.warnings), not the console
    state.captured_warnings = True
    _active = state


def attach_log_file(log_path: str | os.PathLike) -> None:
    """Descriptor 2 into the run's log file (appended), with what was captured before it was known.
    Nothing happens when output is not diverted (library use, ``--debug``)."""
    if _active is None:
        return
    for handler in logging.getLogger().handlers:
        if getattr(handler, _LIBRARY_HANDLER_FLAG, False):
            handler.flush()
    log_fd = os.open(os.fspath(log_path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if _active.capture is not None:
            _active.capture.flush()
            _active.capture.seek(0)
            early = _active.capture.read()
            if early:
                os.write(log_fd, b"--- library output before the log file was opened ---\n" + early)
        os.dup2(log_fd, 2)
    finally:
        os.close(log_fd)
    if _active.capture is not None:
        _active.capture.close()
        _active.capture = None
    _active.log_path = os.fspath(log_path)


def restore() -> None:
    """Descriptor 2 and ``sys.stderr`` back as they were. Library output captured while no log file was
    open (``--show_results``, ``--check_complexity``, an error before the log) is dropped."""
    global _active
    state, _active = _active, None
    if state is None:
        return
    for handler in list(logging.getLogger().handlers):
        if getattr(handler, _LIBRARY_HANDLER_FLAG, False):
            handler.flush()
            logging.getLogger().removeHandler(handler)
    if state.captured_warnings:
        logging.captureWarnings(False)
    if sys.stderr is not state.saved_stderr:  # left open: a logging handler may still hold it (records at exit)
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        sys.stderr = state.saved_stderr
    if state.capture is not None:
        state.capture.close()
    os.dup2(state.saved_fd, 2)
    os.close(state.saved_fd)


def diverted() -> bool:
    """Whether library output is being kept off the console."""
    return _active is not None


def _writes_to_fd(stream, fd: int) -> bool:
    try:
        return stream.fileno() == fd
    except (AttributeError, OSError, ValueError):
        return False


def _install_library_handler() -> None:
    """The root logger (every library's records that do not stop elsewhere) writes to descriptor 2, the log file."""
    root = logging.getLogger()
    if any(getattr(h, _LIBRARY_HANDLER_FLAG, False) for h in root.handlers):
        return
    stream = open(2, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter(LIBRARY_LOG_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    setattr(handler, _LIBRARY_HANDLER_FLAG, True)
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
