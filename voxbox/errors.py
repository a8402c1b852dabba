"""Errors a user can act on.

Anything raised as :class:`VoxboxError` is shown by the CLI as one line, without a
traceback (unless ``--debug``), and exits non-zero. Library users catch it like any
other exception.
"""


class VoxboxError(Exception):
    """A failure with a message that tells the user what to fix."""


class MissingExtraError(VoxboxError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str):
        super().__init__(
            f"this needs the optional package '{package}': pip install 'voxbox[{extra}]'"
        )
