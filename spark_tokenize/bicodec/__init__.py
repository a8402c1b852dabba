"""BiCodec, module by module, with state-dict names of the official checkpoint.

- ``weight_norm``: convolutions with legacy ``weight_g``/``weight_v`` storage, folding
- ``vocos``: ConvNeXt blocks, AdaLayerNorm, Vocos backbone, ratio-1 sampling block
- ``feat_codec``: semantic ``Encoder`` and the prenet/postnet ``Decoder``
- ``quantizers``: factorized VQ (semantic) and residual FSQ (global)
- ``ecapa``, ``perceiver``, ``speaker_encoder``: the global-token branch
- ``wave_generator``: the vocoder
- ``model``: ``BiCodec``; ``config``: frozen config dataclasses (defaults = the official
  full-size model) and reading ``config.yaml``; ``checkpoint``: strict loading (the folder's
  layout is ``spark_tokenize.layout``)
"""

from .config import BiCodecConfig, TokenizerConfig
from .model import BiCodec

__all__ = ["BiCodec", "BiCodecConfig", "TokenizerConfig"]
