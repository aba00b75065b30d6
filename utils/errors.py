"""The one error type a user sees.

Every bad input (missing file, malformed CSV or YAML, unknown parameter, truncated model...) is
raised as :class:`Task1aError` with a one-line message that names the culprit (file or key) and the
fix. The command-line entry points catch it, print ``error: <message>`` to stderr and exit with
status 1; ``--debug`` re-raises it to show the traceback. A hint naming ``python task1a.py`` is shown
as the user typed the command (``task1a`` when installed: :func:`utils.cli.as_typed`).
"""


class Task1aError(Exception):
    """A user-facing error: one line naming the file or key at fault and how to fix it."""

    def __init__(self, message: str):
        message = " ".join(str(message).split())  # always one line
        super().__init__(message)



def run_cli(body, debug: bool = False, *, resume_hint: str = "rerun the same command to resume",
            write_fix: str = "free disk space or choose a writable folder") -> int:
    """Run a command-line tool's ``body()`` and turn what went wrong into one line and an exit status.

    ``body`` returns the exit status. A :class:`Task1aError` prints ``error: <message>`` on stderr and
    gives 1; an ``OSError`` met by a library writing its own file (a full disk, an unwritable folder)
    is told as ``error: cannot read or write <file>: <reason>; <write_fix>`` and gives 1; Ctrl-C gives
    130 with ``resume_hint``. With ``debug`` (the tools' ``--debug``) errors are re-raised to show the
    traceback. Every command-line entry point goes through here, so all answer a bad input alike.
    """
    import logging
    import sys

    from utils.cli import as_typed

    try:
        return body()
    except Task1aError as exc:
        if debug:
            raise
        logging.getLogger(__name__).debug("error", exc_info=True)
        print(f"error: {as_typed(str(exc))}", file=sys.stderr)
        return 1
    except OSError as exc:
        if debug:
            raise
        logging.getLogger(__name__).debug("error", exc_info=True)
        where = f" {exc.filename}" if exc.filename else ""
        print(f"error: cannot read or write{where}: {exc.strerror or exc}; {write_fix}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"interrupted: {resume_hint}", file=sys.stderr)
        return 130
