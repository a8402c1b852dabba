"""Speaker embeddings: one small interface, two backends, offline.

An encoder maps a batch of 16 kHz mono waveforms (the annotate front end's trimmed,
volume-normalised speech) to unit vectors, so the cosine of two clips is their dot
product. Records store them as ``embedding`` (float16 values) with ``embedding_model``.

Backends (``make_encoder(spec)``):

- ``ge2e`` (default): the GE2E voice encoder of Resemblyzer (Wan et al., "Generalized
  end-to-end loss for speaker verification", 2018), with the pretrained weights the
  ``resemblyzer`` package ships (``resemblyzer/pretrained.pt``, Apache-2.0). Only the
  weights come from the package: importing it needs ``webrtcvad``, which needs
  ``pkg_resources``, which recent setuptools no longer has. The network and its front
  end are written here (:class:`GE2ENetwork`, :func:`ge2e_mel`, :func:`partial_starts`)
  and reproduce ``VoiceEncoder.embed_utterance`` within 1e-5 (tests/test_embeddings.py).
- ``ecapa:DIR``: the ECAPA-TDNN x-vector head of the BiCodec speaker branch in a
  Spark-TTS model folder ``DIR`` (no extra model for users who tokenize anyway);
  it embeds the first 6 s reference segment exactly as the tokenizer feeds it.
"""

from __future__ import annotations

import contextlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from voxbox.errors import VoxboxError

DEFAULT_ENCODER = "ge2e"
SAMPLE_RATE = 16000


# ----------------------------------------------------------------------------------
# float16 storage
# ----------------------------------------------------------------------------------
def to_float16_list(vec: np.ndarray) -> List[float]:
    """The vector rounded to float16, as the record stores it (see manifest.half_floats)."""
    from voxbox.manifest import half_floats

    return half_floats(vec)


def as_matrix(embeddings: Sequence[Sequence[float]]) -> np.ndarray:
    """(N, D) float32 rows, re-normalised to unit length after the float16 rounding."""
    m = np.asarray(embeddings, dtype=np.float32)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.where(norms > 0, norms, 1.0)


# ----------------------------------------------------------------------------------
# GE2E (Resemblyzer's voice encoder)
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class GE2EConfig:
    sample_rate: int = SAMPLE_RATE
    n_fft: int = 400               # 25 ms window (Hann, periodic), centred, zero padding
    hop: int = 160                 # 10 ms
    n_mels: int = 40               # Slaney mel filters with Slaney area norm, 0-8 kHz
    hidden: int = 256
    layers: int = 3
    embed_dim: int = 256
    partial_frames: int = 160      # each partial utterance: 1.6 s of mel frames
    partial_rate: float = 1.3      # partials started per second of audio
    min_coverage: float = 0.75     # a last partial needs 75% real audio to be kept


def resemblyzer_weights() -> Path:
    """``pretrained.pt`` inside the installed resemblyzer package, found without importing it."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise VoxboxError("speaker embeddings need the 'resemblyzer' package for its pretrained GE2E "
                          "weights: pip install resemblyzer")
    path = Path(list(spec.submodule_search_locations)[0]) / "pretrained.pt"
    if not path.is_file():
        raise VoxboxError(f"{path}: resemblyzer is installed without its pretrained.pt")
    return path


def _mel_filterbank(cfg: GE2EConfig):
    """(n_fft/2+1, n_mels) float32: the Slaney filterbank spark_tokenize computes for BiCodec."""
    from spark_tokenize.mel import slaney_mel_filterbank

    return slaney_mel_filterbank(cfg.n_fft // 2 + 1, 0.0, cfg.sample_rate / 2, cfg.n_mels, cfg.sample_rate)


def ge2e_mel(wav: np.ndarray, fb, cfg: GE2EConfig = GE2EConfig()):
    """(frames, n_mels) float32 power mel spectrogram, frames = len // hop + 1.

    The STFT runs in float64 and is rounded to complex64 before squaring, the order
    librosa (which Resemblyzer calls) uses; the filterbank product is float32.
    """
    import torch

    x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float64))
    window = torch.hann_window(cfg.n_fft, periodic=True, dtype=torch.float64)
    spec = torch.stft(x, cfg.n_fft, hop_length=cfg.hop, window=window, center=True,
                      pad_mode="constant", return_complex=True).to(torch.complex64)
    power = spec.real ** 2 + spec.imag ** 2          # (freqs, frames)
    return power.T @ fb                               # (frames, n_mels)


def partial_starts(n_samples: int, cfg: GE2EConfig = GE2EConfig()) -> List[int]:
    """First mel frame of each partial utterance of a clip of ``n_samples``.

    Partials of ``partial_frames`` start every ``round(sr / rate / hop)`` frames and
    cover the clip; the last is dropped when less than ``min_coverage`` of it is real
    audio, unless it is the only one.
    """
    n_frames = int(np.ceil((n_samples + 1) / cfg.hop))
    step = int(np.round(cfg.sample_rate / cfg.partial_rate / cfg.hop))
    starts = list(range(0, max(1, n_frames - cfg.partial_frames + step + 1), step))
    coverage = (n_samples - starts[-1] * cfg.hop) / (cfg.partial_frames * cfg.hop)
    if coverage < cfg.min_coverage and len(starts) > 1:
        starts.pop()
    return starts


@contextlib.contextmanager
def one_cpu_thread():
    """Run torch CPU ops on one thread, then restore the setting. The LSTM's 160 steps
    are small matrix products: extra threads gain nothing and, on a busy machine, spin
    (measured: 2 threads 14x slower than 1 under load). One thread also keeps the numbers
    independent of the machine's core count."""
    import torch

    n = torch.get_num_threads()
    if n != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if n != 1:
            torch.set_num_threads(n)


def _network_class():
    from torch import nn

    class GE2ENetwork(nn.Module):
        """3-layer LSTM over mel frames; the last layer's final hidden state -> Linear ->
        ReLU -> L2 norm. (P, 160, 40) partial mels -> (P, 256) unit vectors."""

        def __init__(self, cfg: GE2EConfig):
            super().__init__()
            self.lstm = nn.LSTM(cfg.n_mels, cfg.hidden, cfg.layers, batch_first=True)
            self.linear = nn.Linear(cfg.hidden, cfg.embed_dim)

        def forward(self, mels):
            _, (hidden, _) = self.lstm(mels)              # hidden: (layers, P, hidden)
            e = self.linear(hidden[-1]).clamp(min=0.0)    # (P, embed_dim)
            return e / e.norm(dim=1, keepdim=True)

    return GE2ENetwork


class GE2EEncoder:
    """Resemblyzer's GE2E encoder, batched: the partials of all clips of a batch go
    through the network together, in blocks of a fixed number of rows (the last block
    zero-padded). A fixed shape means the same kernels for every block, so a clip's
    embedding is bit for bit the same whatever else is in its batch (tested): without it,
    a third of the clips' float16 vectors changed with the batch they came in."""

    name = "ge2e-resemblyzer"
    dim = 256

    def __init__(self, weights: Optional[Path] = None, device: str = "cpu", rows: Optional[int] = None,
                 cfg: GE2EConfig = GE2EConfig()):
        import torch

        self.cfg, self.device = cfg, torch.device(device)
        # Small blocks cost little on a CPU (the LSTM's 160 steps dominate); a GPU wants more.
        self.rows = rows or (64 if self.device.type == "cuda" else 4)
        path = Path(weights) if weights else resemblyzer_weights()
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
        except Exception as e:  # noqa: BLE001  (a damaged file raises many types)
            raise VoxboxError(f"{path}: cannot read the GE2E weights ({e})") from None
        # The checkpoint also holds the GE2E loss's similarity scale and bias: training only.
        state = {k: v for k, v in state.items() if k.startswith(("lstm.", "linear."))}
        self.net = _network_class()(cfg)
        self.net.load_state_dict(state, strict=True)
        self.net.eval().to(self.device)
        self.fb = _mel_filterbank(cfg)

    def embed_batch(self, wavs: Sequence[np.ndarray]) -> np.ndarray:
        """(B, 256) float32 unit vectors for 16 kHz waveforms; the mean of each clip's
        partial embeddings, renormalised (Resemblyzer's ``embed_utterance``)."""
        with one_cpu_thread():
            return self._embed(wavs)

    def _embed(self, wavs: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        cfg, partials, owner = self.cfg, [], []
        for i, wav in enumerate(wavs):
            starts = partial_starts(len(wav), cfg)
            stop = (starts[-1] + cfg.partial_frames) * cfg.hop
            if stop >= len(wav):  # zero-pad so the last partial has its frames
                wav = np.pad(np.asarray(wav), (0, stop - len(wav)))
            mel = ge2e_mel(wav, self.fb, cfg)
            partials.extend(mel[s:s + cfg.partial_frames] for s in starts)
            owner.extend([i] * len(starts))
        out = []
        with torch.inference_mode():
            for k in range(0, len(partials), self.rows):
                block = torch.stack(partials[k:k + self.rows])                 # (rows, 160, 40)
                n = block.shape[0]
                if n < self.rows:
                    block = torch.cat([block, block.new_zeros(self.rows - n, *block.shape[1:])])
                out.append(self.net(block.to(self.device)).cpu()[:n])
        emb = torch.cat(out).numpy() if out else np.zeros((0, cfg.embed_dim), np.float32)
        owner = np.asarray(owner)
        result = np.zeros((len(wavs), cfg.embed_dim), dtype=np.float32)
        for i in range(len(wavs)):
            # A partial whose ReLU output is all zero has no direction (NaN): leave it out;
            # a clip with none left gets a NaN vector, which callers treat as missing.
            part = emb[owner == i]
            part = part[np.all(np.isfinite(part), axis=1)]
            mean = part.mean(axis=0) if len(part) else np.full(cfg.embed_dim, np.nan, np.float32)
            result[i] = mean / np.linalg.norm(mean)
        return result


# ----------------------------------------------------------------------------------
# ECAPA x-vector from a Spark-TTS folder (BiCodec's speaker branch)
# ----------------------------------------------------------------------------------
class EcapaEncoder:
    """BiCodec's ECAPA-TDNN x-vector, L2-normalised; loads BiCodec only (no wav2vec2)."""

    name = "ecapa-bicodec"

    def __init__(self, model_dir: str, device: str = "cpu"):
        import torch

        from spark_tokenize.bicodec.checkpoint import load_bicodec
        from spark_tokenize.bicodec.config import load_tokenizer_config
        from spark_tokenize.errors import TokenizerError
        from spark_tokenize.layout import ModelLayout

        try:
            layout = ModelLayout(Path(model_dir)).check()
            config = load_tokenizer_config(layout.tokenizer_config)
            self.model = load_bicodec(Path(model_dir)).to(torch.device(device))
        except TokenizerError as e:
            raise VoxboxError(str(e)) from None
        self.ref_length = config.ref_length  # the tokenizer's 6 s reference segment, in samples
        self.device = torch.device(device)
        self.name = f"ecapa-bicodec:{Path(model_dir).name}"

    def embed_batch(self, wavs: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        from spark_tokenize.audio import reference_clip

        refs = np.stack([reference_clip(np.asarray(w, dtype=np.float32), self.ref_length) for w in wavs])
        with torch.inference_mode():
            x = self.model.x_vector(torch.from_numpy(refs).to(self.device)).float().cpu().numpy()
        return x / np.linalg.norm(x, axis=1, keepdims=True)


# ----------------------------------------------------------------------------------
# The registry
# ----------------------------------------------------------------------------------
def check_encoder_spec(spec: str) -> None:
    """Cheap check (no model loaded) that ``spec`` names a backend: 'ge2e' or 'ecapa:DIR'."""
    if spec == "ge2e":
        resemblyzer_weights()
        return
    if spec.startswith("ecapa:"):
        from spark_tokenize.layout import ModelLayout

        layout = ModelLayout(Path(spec[len("ecapa:"):]))
        if not layout.bicodec_weights.is_file():
            raise VoxboxError(f"{layout.root}: not a Spark-TTS model folder (no "
                              f"{layout.bicodec_weights.relative_to(layout.root)}) for the ecapa embedding backend")
        return
    raise VoxboxError(f"unknown embedding model {spec!r}: use 'ge2e' (Resemblyzer's pretrained GE2E) "
                      "or 'ecapa:DIR' (BiCodec's ECAPA x-vector from a Spark-TTS folder)")


def encoder_name(spec: str = DEFAULT_ENCODER) -> str:
    """The ``embedding_model`` name the encoder of ``spec`` writes, without loading it
    (so a record's stored embedding can be recognised before any model is read)."""
    check_encoder_spec(spec)
    return GE2EEncoder.name if spec == "ge2e" else f"ecapa-bicodec:{Path(spec[len('ecapa:'):]).name}"


def make_encoder(spec: str = DEFAULT_ENCODER, device: str = "cpu"):
    check_encoder_spec(spec)
    if spec == "ge2e":
        return GE2EEncoder(device=device)
    return EcapaEncoder(spec[len("ecapa:"):], device=device)
