"""BiCodec configuration as small frozen dataclasses, and reading them from ``config.yaml``.

One dataclass per block of ``BiCodec/config.yaml`` (``audio_tokenizer:``), named after
the block; ``BiCodecConfig()`` is the full-size Spark-TTS-0.5B model and
``TokenizerConfig()`` its top-level ``config.yaml``. Fields made with ``required()`` are
stated in every official file and a file without them is refused; the others may be
omitted, as with the official constructors' defaults.

    cfg = BiCodecConfig()                                         # official, full size
    tiny = replace(cfg, encoder=replace(cfg.encoder, vocos_num_layers=2))
    cfg = load_bicodec_config(Path("Spark-TTS-0.5B/BiCodec/config.yaml"))

Reading accepts what the official loader accepts: blocks whose keys go straight into a
module constructor refuse unknown keys (the official code would crash on them); the
blocks it reads key by key (``mel_params``, top-level ``config.yaml``) and the quantizer
(its constructor swallows ``**kwargs``) ignore keys they do not know.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping, Optional, Tuple

from ..errors import TokenizerError


def required(default: Any = dataclasses.MISSING, factory: Any = dataclasses.MISSING):
    """A field every official file states: reading refuses a file without it (rather than
    silently giving it the full-size value), while code may still rely on the default."""
    return field(default=default, default_factory=factory, metadata={"required": True})


@dataclass(frozen=True)
class MelConfig:
    """``mel_params``: the linear-magnitude Slaney mel of the global branch."""
    sample_rate: int = required(16000)
    n_fft: int = required(1024)
    win_length: int = required(640)
    hop_length: int = required(320)
    num_mels: int = required(128)
    mel_fmin: float = 10.0
    mel_fmax: Optional[float] = None  # None: sample_rate / 2
    unknown_keys: ClassVar[str] = "ignore"


@dataclass(frozen=True)
class VocosStackConfig:
    """A ConvNeXt (Vocos) stack: input_channels -> vocos_dim x vocos_num_layers -> out_channels."""
    input_channels: int = required(1024)
    vocos_dim: int = required(384)
    vocos_intermediate_dim: int = required(2048)
    vocos_num_layers: int = required(12)
    out_channels: int = required(1024)
    sample_ratios: Tuple[int, ...] = (1, 1)
    unknown_keys: ClassVar[str] = "refuse"


@dataclass(frozen=True)
class EncoderConfig(VocosStackConfig):
    """``encoder``: wav2vec2 features (input_channels) -> ConvNeXt stack -> latent (out_channels)."""


@dataclass(frozen=True)
class DecoderConfig(VocosStackConfig):
    """``prenet`` / ``postnet``: latent -> ConvNeXt stack (AdaLayerNorm when condition_dim is set)."""
    condition_dim: Optional[int] = None
    use_tanh_at_final: bool = False


@dataclass(frozen=True)
class WaveGeneratorConfig:
    """``decoder``: the vocoder; hop length = prod(rates) samples per latent frame."""
    input_channel: int = required(1024)
    channels: int = required(1536)
    rates: Tuple[int, ...] = required((8, 5, 4, 2))
    kernel_sizes: Tuple[int, ...] = required((16, 11, 8, 4))
    unknown_keys: ClassVar[str] = "refuse"


@dataclass(frozen=True)
class QuantizerConfig:
    """``quantizer``: factorized VQ of the semantic branch (the loss settings are training only)."""
    input_dim: int = required(1024)
    codebook_size: int = required(8192)
    codebook_dim: int = required(8)
    commitment: float = 0.25
    codebook_loss_weight: float = 2.0
    threshold_ema_dead_code: float = 0.2
    unknown_keys: ClassVar[str] = "ignore"


@dataclass(frozen=True)
class SpeakerEncoderConfig:
    """``speaker_encoder``: mel (input_dim) -> ECAPA -> token_num latents -> FSQ -> d-vector (out_dim)."""
    input_dim: int = required(128)
    out_dim: int = required(1024)
    latent_dim: int = required(128)
    token_num: int = required(32)
    fsq_levels: Tuple[int, ...] = required((4, 4, 4, 4, 4, 4))
    fsq_num_quantizers: int = required(1)
    unknown_keys: ClassVar[str] = "refuse"


def _official_prenet() -> DecoderConfig:
    return DecoderConfig(condition_dim=1024)


def _official_postnet() -> DecoderConfig:
    return DecoderConfig(vocos_num_layers=6)


@dataclass(frozen=True)
class BiCodecConfig:
    """The ``audio_tokenizer`` mapping of ``BiCodec/config.yaml``; defaults = Spark-TTS-0.5B."""
    mel_params: MelConfig = required(factory=MelConfig)
    encoder: EncoderConfig = required(factory=EncoderConfig)
    decoder: WaveGeneratorConfig = required(factory=WaveGeneratorConfig)
    quantizer: QuantizerConfig = required(factory=QuantizerConfig)
    speaker_encoder: SpeakerEncoderConfig = required(factory=SpeakerEncoderConfig)
    prenet: DecoderConfig = required(factory=_official_prenet)
    postnet: DecoderConfig = required(factory=_official_postnet)
    unknown_keys: ClassVar[str] = "ignore"  # the official loader reads the blocks it needs


@dataclass(frozen=True)
class TokenizerConfig:
    """The model folder's top-level ``config.yaml``; inference uses the first four fields."""
    sample_rate: int = required(16000)
    ref_segment_duration: float = required(6.0)
    latent_hop_length: int = required(320)
    volume_normalize: bool = True
    # Training-data settings, kept so the file round-trips.
    highpass_cutoff_freq: Optional[float] = 40
    segment_duration: Optional[float] = 2.4
    max_val_duration: Optional[float] = 12
    unknown_keys: ClassVar[str] = "ignore"

    @property
    def ref_length(self) -> int:
        """Samples in the global branch's reference clip: a whole number of hops (96,000)."""
        hop = self.latent_hop_length
        return int(self.sample_rate * self.ref_segment_duration) // hop * hop


def to_dict(config: Any) -> dict:
    """A config as the plain mapping its YAML file holds (lists for tuples)."""
    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return [plain(v) for v in value] if isinstance(value, (list, tuple)) else value

    return plain(dataclasses.asdict(config))


# -- reading ---------------------------------------------------------------------------

def _coerce(value: Any, kind: Any, where: str) -> Any:
    """Check one YAML value against a field's annotation; lists become tuples."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is typing.Union:  # Optional[X]
        return None if value is None else _coerce(value, args[0], where)
    if dataclasses.is_dataclass(kind):
        return from_mapping(kind, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or not value:
            raise TokenizerError(f"{where}: expected a non-empty list, got {value!r}")
        return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
    ok = {int: (int,), float: (int, float), bool: (bool,)}[kind]
    if isinstance(value, bool) != (kind is bool) or not isinstance(value, ok):
        raise TokenizerError(f"{where}: expected {kind.__name__}, got {value!r}")
    return kind(value)


def from_mapping(cls, data: Any, where: str):
    """Build config dataclass ``cls`` from a parsed YAML mapping, naming the first problem."""
    if not isinstance(data, Mapping):
        raise TokenizerError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for f in fields.values():
        if f.metadata.get("required") and f.name not in data:
            raise TokenizerError(f"{where}: lacks '{f.name}'")
    unknown = [k for k in data if k not in fields]
    if unknown and cls.unknown_keys == "refuse":
        close = difflib.get_close_matches(str(unknown[0]), list(fields), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise TokenizerError(f"{where}: unknown key '{unknown[0]}'{hint}")
    return cls(**{k: _coerce(v, hints[k], f"{where}: {k}") for k, v in data.items() if k in fields})


def _read_yaml(path: Path) -> Any:
    import yaml

    if not path.is_file():
        raise TokenizerError(f"missing config file: {path}")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise TokenizerError(f"cannot parse {path}: {str(e).splitlines()[0]}") from None


def load_bicodec_config(path: Path) -> BiCodecConfig:
    """Read ``BiCodec/config.yaml`` (one mapping ``audio_tokenizer:``)."""
    data = _read_yaml(path)
    if not isinstance(data, dict) or "audio_tokenizer" not in data:
        raise TokenizerError(f"{path}: expected a top-level 'audio_tokenizer' mapping")
    return from_mapping(BiCodecConfig, data["audio_tokenizer"], str(path))


def load_tokenizer_config(path: Path) -> TokenizerConfig:
    """Read the model folder's top-level ``config.yaml``."""
    return from_mapping(TokenizerConfig, _read_yaml(path), str(path))
