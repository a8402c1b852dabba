"""The Spark-TTS model folder and strict loading of ``BiCodec/model.safetensors``.

Layout (as published in SparkAudio/Spark-TTS-0.5B; ``LLM/`` is not needed here)::

    MODEL_DIR/config.yaml
    MODEL_DIR/BiCodec/config.yaml
    MODEL_DIR/BiCodec/model.safetensors
    MODEL_DIR/wav2vec2-large-xlsr-53/{config.json, preprocessor_config.json,
                                      model.safetensors | pytorch_model.bin}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Mapping, Optional

import torch

from ..errors import TokenizerError
from .config import BiCodecConfig, load_bicodec_config
from .model import BiCodec

BICODEC_SUBDIR = "BiCodec"
WAV2VEC2_SUBDIR = "wav2vec2-large-xlsr-53"
#: Buffers of torchaudio's MelSpectrogram; absent from the published checkpoint.
TORCHAUDIO_MEL_BUFFERS = ("mel_transformer.spectrogram.window", "mel_transformer.mel_scale.fb")


@dataclass(frozen=True)
class ModelLayout:
    root: Path

    @property
    def tokenizer_config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def bicodec_config(self) -> Path:
        return self.root / BICODEC_SUBDIR / "config.yaml"

    @property
    def bicodec_weights(self) -> Path:
        return self.root / BICODEC_SUBDIR / "model.safetensors"

    @property
    def wav2vec2_dir(self) -> Path:
        return self.root / WAV2VEC2_SUBDIR

    def check(self) -> "ModelLayout":
        """Fail with the first missing piece, before anything is loaded."""
        if not self.root.is_dir():
            what = "is a file, not a model folder" if self.root.exists() else "model folder not found"
            raise TokenizerError(f"{self.root}: {what}")
        for p in (self.tokenizer_config, self.bicodec_config, self.bicodec_weights,
                  self.wav2vec2_dir / "config.json"):
            if not p.is_file():
                raise TokenizerError(f"model folder {self.root} lacks {p.relative_to(self.root)}")
        if not any((self.wav2vec2_dir / n).is_file() for n in ("model.safetensors", "pytorch_model.bin")):
            raise TokenizerError(
                f"model folder {self.root} lacks {WAV2VEC2_SUBDIR}/model.safetensors or pytorch_model.bin")
        return self


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
