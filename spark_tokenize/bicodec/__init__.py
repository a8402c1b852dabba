"""BiCodec, module by module, with state-dict names of the official checkpoint.

- ``weight_norm``: convolutions with legacy ``weight_g``/``weight_v`` storage, folding
- ``vocos``: ConvNeXt blocks, AdaLayerNorm, Vocos backbone, ratio-1 sampling block
- ``feat_codec``: semantic ``Encoder`` and the prenet/postnet ``Decoder``
- ``quantizers``: factorized VQ (semantic) and residual FSQ (global)
- ``ecapa``, ``perceiver``, ``speaker_encoder``: the global-token branch
- ``wave_generator``: the vocoder
- ``model``: ``BiCodec``; ``config``: official values and YAML; ``checkpoint``: strict loading
  (the folder's layout is ``spark_tokenize.layout``)
"""

from .config import OFFICIAL_BICODEC_CONFIG, OFFICIAL_TOKENIZER_CONFIG, official_config
from .model import BiCodec

__all__ = ["BiCodec", "OFFICIAL_BICODEC_CONFIG", "OFFICIAL_TOKENIZER_CONFIG", "official_config"]
