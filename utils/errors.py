"""The one error type a user sees.

Every bad input (missing file, malformed CSV or YAML, unknown parameter, truncated model...) is
raised as :class:`Task1aError` with a one-line message that names the culprit (file or key) and the
fix. The command-line entry points catch it, print ``error: <message>`` to stderr and exit with
status 1; ``--debug`` re-raises it to show the traceback.
"""


class Task1aError(Exception):
    """A user-facing error: one line naming the file or key at fault and how to fix it."""

    def __init__(self, message: str):
        message = " ".join(str(message).split())  # always one line
        super().__init__(message)
