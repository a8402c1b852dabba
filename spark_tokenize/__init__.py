"""spark_tokenize: a from-scratch BiCodec (Spark-TTS audio tokenizer) and Spark-TTS inference.

    from spark_tokenize import BiCodecTokenizer
    tok = BiCodecTokenizer("pretrained_models/Spark-TTS-0.5B")
    global_tokens, semantic_tokens = tok.tokenize("speech.wav")   # (1, 32), (1, T) int64
    wav = tok.detokenize(global_tokens, semantic_tokens)           # float32, 16 kHz

Importing this package is cheap; torch and transformers load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import TokenizerError

if TYPE_CHECKING:  # pragma: no cover
    from .tokenizer import BiCodecTokenizer

__all__ = ["BiCodecTokenizer", "TokenizerError"]


def __getattr__(name: str):
    if name == "BiCodecTokenizer":
        from .tokenizer import BiCodecTokenizer

        return BiCodecTokenizer
    raise AttributeError(f"module 'spark_tokenize' has no attribute {name!r}")
