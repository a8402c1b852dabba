"""The one exception type spark_tokenize raises for problems a user can fix.

spark_tokenize is importable without voxbox, so it defines its own error; voxbox's
tokenize stage and CLI turn it into a rejection or a one-line ``error: ...``.
"""

from __future__ import annotations


class TokenizerError(ValueError):
    """Bad model folder, bad checkpoint, bad audio or bad tokens; the message says which.

    ``reason`` is a short machine-readable code for bad audio (``missing_audio``,
    ``unreadable_audio``, ``non_finite_samples``, ``audio_too_short``, ``silent_audio``,
    ``bad_audio_array``), used as the rejection reason in data pipelines.
    """

    def __init__(self, message: str, reason: str = "tokenizer_error"):
        super().__init__(message)
        self.reason = reason
