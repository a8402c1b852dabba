"""Strict loading of ``BiCodec/model.safetensors`` from a Spark-TTS model folder.

The folder's layout is :mod:`spark_tokenize.layout` (``ModelLayout`` is re-exported here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Mapping, Optional

import torch

from ..errors import TokenizerError
from ..layout import ModelLayout  # noqa: F401 - re-exported: the folder the loader reads
from .config import BiCodecConfig, load_bicodec_config
from .model import BiCodec

#: Buffers of torchaudio's MelSpectrogram; absent from the published checkpoint.
TORCHAUDIO_MEL_BUFFERS = ("mel_transformer.spectrogram.window", "mel_transformer.mel_scale.fb")


def check_state_dict(expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor],
                     source: str, allowed_missing: tuple = ()) -> None:
    """Raise naming the first key that is missing, unexpected or of the wrong shape."""
    for k, v in expected.items():
        if k not in found:
            if k in allowed_missing:
                continue
            raise TokenizerError(f"{source}: missing key '{k}' (not a checkpoint of this architecture?)")
        if tuple(found[k].shape) != tuple(v.shape):
            raise TokenizerError(
                f"{source}: key '{k}' has shape {tuple(found[k].shape)}, the model expects {tuple(v.shape)}")
    for k in found:
        if k not in expected:
            raise TokenizerError(f"{source}: unexpected key '{k}' (not a checkpoint of this architecture?)")


def read_safetensors(path: Path) -> Dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as e:
        raise TokenizerError(f"cannot read {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__} "
                             "(truncated or corrupted? download the model again)") from None


def load_bicodec(model_dir: Path, config: Optional[BiCodecConfig] = None, fold: bool = True) -> BiCodec:
    """Build BiCodec from ``BiCodec/config.yaml`` and load its weights strictly.

    The torchaudio mel buffers the official loader reports as missing are not part of
    our state dict (computed, non-persistent); every other key must match exactly.
    """
    layout = ModelLayout(Path(model_dir))
    cfg = config if config is not None else load_bicodec_config(layout.bicodec_config)
    try:
        # Built without memory; the checkpoint provides every persistent tensor, so
        # random initialisation (seconds at full size) would be thrown away anyway.
        with torch.device("meta"):
            model = BiCodec(cfg)
    except (TypeError, ValueError) as e:
        raise TokenizerError(f"{layout.bicodec_config}: unsupported configuration: {e}") from None
    state = read_safetensors(layout.bicodec_weights)
    # A checkpoint re-saved by the official (torchaudio) code carries the mel transform's
    # window and filterbank; ours are computed, so those two entries are dropped.
    for k in TORCHAUDIO_MEL_BUFFERS:
        state.pop(k, None)
    check_state_dict(model.state_dict(), state, str(layout.bicodec_weights))
    model.load_state_dict(state, strict=True, assign=True)
    for m in model.modules():
        if hasattr(m, "init_buffers"):  # the computed, non-persistent buffers
            m.init_buffers(torch.device("cpu"))
    leftover = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
    if leftover:
        raise TokenizerError(f"{layout.bicodec_weights}: '{leftover[0]}' was not loaded")
    if fold:
        model.fold_weight_norm()
    return model.eval()
