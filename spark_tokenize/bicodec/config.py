"""BiCodec configuration: the official values, and reading/validating ``config.yaml`` files."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Dict

from ..errors import TokenizerError

#: The ``audio_tokenizer`` block of Spark-TTS-0.5B's ``BiCodec/config.yaml`` (full size).
OFFICIAL_BICODEC_CONFIG: Dict[str, Any] = {
    "mel_params": {"sample_rate": 16000, "n_fft": 1024, "win_length": 640, "hop_length": 320,
                   "mel_fmin": 10, "mel_fmax": None, "num_mels": 128},
    "encoder": {"input_channels": 1024, "vocos_dim": 384, "vocos_intermediate_dim": 2048,
                "vocos_num_layers": 12, "out_channels": 1024, "sample_ratios": [1, 1]},
    "decoder": {"input_channel": 1024, "channels": 1536, "rates": [8, 5, 4, 2],
                "kernel_sizes": [16, 11, 8, 4]},
    "quantizer": {"input_dim": 1024, "codebook_size": 8192, "codebook_dim": 8, "commitment": 0.25,
                  "codebook_loss_weight": 2.0, "use_l2_normlize": True, "threshold_ema_dead_code": 0.2},
    "speaker_encoder": {"input_dim": 128, "out_dim": 1024, "latent_dim": 128, "token_num": 32,
                        "fsq_levels": [4, 4, 4, 4, 4, 4], "fsq_num_quantizers": 1},
    "prenet": {"input_channels": 1024, "vocos_dim": 384, "vocos_intermediate_dim": 2048,
               "vocos_num_layers": 12, "out_channels": 1024, "condition_dim": 1024,
               "sample_ratios": [1, 1], "use_tanh_at_final": False},
    "postnet": {"input_channels": 1024, "vocos_dim": 384, "vocos_intermediate_dim": 2048,
                "vocos_num_layers": 6, "out_channels": 1024, "use_tanh_at_final": False},
}

#: Spark-TTS-0.5B's top-level ``config.yaml``; inference uses sample_rate,
#: ref_segment_duration, latent_hop_length and volume_normalize.
OFFICIAL_TOKENIZER_CONFIG: Dict[str, Any] = {
    "highpass_cutoff_freq": 40, "sample_rate": 16000, "segment_duration": 2.4,
    "max_val_duration": 12, "latent_hop_length": 320, "ref_segment_duration": 6,
    "volume_normalize": True,
}

_REQUIRED = {
    "mel_params": ("sample_rate", "n_fft", "win_length", "hop_length", "num_mels"),
    "encoder": ("input_channels", "vocos_dim", "vocos_intermediate_dim", "vocos_num_layers", "out_channels"),
    "decoder": ("input_channel", "channels", "rates", "kernel_sizes"),
    "quantizer": ("input_dim", "codebook_size", "codebook_dim"),
    "speaker_encoder": ("input_dim", "out_dim", "latent_dim", "token_num", "fsq_levels", "fsq_num_quantizers"),
    "prenet": ("input_channels", "vocos_dim", "vocos_intermediate_dim", "vocos_num_layers", "out_channels"),
    "postnet": ("input_channels", "vocos_dim", "vocos_intermediate_dim", "vocos_num_layers", "out_channels"),
}
_TOKENIZER_REQUIRED = ("sample_rate", "ref_segment_duration", "latent_hop_length")


def official_config() -> Dict[str, Any]:
    return copy.deepcopy(OFFICIAL_BICODEC_CONFIG)


def _read_yaml(path: Path) -> Any:
    import yaml

    if not path.is_file():
        raise TokenizerError(f"missing config file: {path}")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise TokenizerError(f"cannot parse {path}: {str(e).splitlines()[0]}") from None


def validate_bicodec_config(cfg: Any, source: str = "BiCodec config") -> Dict[str, Any]:
    if not isinstance(cfg, dict):
        raise TokenizerError(f"{source}: expected a mapping of blocks, got {type(cfg).__name__}")
    for block, keys in _REQUIRED.items():
        if not isinstance(cfg.get(block), dict):
            raise TokenizerError(f"{source}: missing block '{block}'")
        for k in keys:
            if k not in cfg[block]:
                raise TokenizerError(f"{source}: block '{block}' lacks '{k}'")
    return cfg


def load_bicodec_config(path: Path) -> Dict[str, Any]:
    """Read ``BiCodec/config.yaml`` (one mapping ``audio_tokenizer:``)."""
    data = _read_yaml(path)
    if not isinstance(data, dict) or "audio_tokenizer" not in data:
        raise TokenizerError(f"{path}: expected a top-level 'audio_tokenizer' mapping")
    return validate_bicodec_config(data["audio_tokenizer"], str(path))


def load_tokenizer_config(path: Path) -> Dict[str, Any]:
    """Read the model folder's top-level ``config.yaml``."""
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise TokenizerError(f"{path}: expected a mapping")
    for k in _TOKENIZER_REQUIRED:
        if k not in data:
            raise TokenizerError(f"{path}: lacks '{k}'")
    return data
