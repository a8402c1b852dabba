"""BiCodecTokenizer: audio <-> BiCodec tokens, one clip or a padded batch at a time.

Token conventions (torch int64 tensors on the CPU):

- ``global_tokens``: shape (1, 32), values 0..4095. The official tokenizer returns
  (1, 1, 32) int32; ``detokenize`` accepts (32,), (1, 32) and (1, 1, 32) alike.
- ``semantic_tokens``: shape (1, T), values 0..8191, T = floor((N - 400) / 320) + 1 for
  N samples at 16 kHz (50 per second).

``detokenize`` returns a float32 numpy waveform at 16 kHz of 320 * T samples.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .audio import AudioInput, load_audio, reference_clip, volume_normalize
from .bicodec.checkpoint import ModelLayout, load_bicodec
from .bicodec.config import TokenizerConfig, load_tokenizer_config
from .errors import TokenizerError
from .features import Wav2Vec2Features

TokenPair = Tuple[torch.Tensor, torch.Tensor]
TokensLike = Union[torch.Tensor, np.ndarray, Sequence[int]]

#: A clip whose peak stays below this (-80 dBFS) before volume normalisation is silence.
SILENCE_PEAK = 1e-4

_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
           "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
_HALF = {"float16", "fp16", "half"}


def resolve_dtype(dtype: Union[str, torch.dtype], device: torch.device) -> torch.dtype:
    name = str(dtype).replace("torch.", "").lower()
    if name in _HALF:
        raise TokenizerError("float16 is known to break Spark-TTS/BiCodec; use float32 or bfloat16 (CUDA)")
    if name not in _DTYPES:
        raise TokenizerError(f"unknown dtype {dtype!r}; use float32 or bfloat16")
    dt = _DTYPES[name]
    if dt is torch.bfloat16 and device.type != "cuda":
        raise TokenizerError("bfloat16 is only supported on CUDA; use float32 on the CPU")
    return dt


def resolve_device(device: Union[str, torch.device]) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise TokenizerError(f"unknown device {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TokenizerError("device 'cuda' requested but CUDA is not available")
    if dev.type not in ("cpu", "cuda"):
        raise TokenizerError(f"unsupported device {device!r}; use cpu or cuda")
    return dev


@contextlib.contextmanager
def _inference(device: torch.device, dtype: torch.dtype):
    """inference_mode, and on CUDA in float32 no TF32 (cuDNN enables it for convolutions by
    default, which costs ~3 decimal digits and flips tokens at near-ties)."""
    if device.type != "cuda" or dtype != torch.float32:
        with torch.inference_mode():
            yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy TF32 switches are deprecated in newer torch
        prev = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.inference_mode():
            yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = prev


def _describe(item: AudioInput) -> str:
    return str(item) if isinstance(item, (str, os.PathLike)) else "audio array"


class BiCodecTokenizer:
    """Load a Spark-TTS model folder and convert audio to BiCodec tokens and back.

    ``model_dir`` holds ``config.yaml``, ``BiCodec/`` and ``wav2vec2-large-xlsr-53/``.
    ``dtype`` is ``"float32"`` (default, exact) or ``"bfloat16"`` (CUDA only); float16
    is refused because it is known to break the model.
    """

    def __init__(self, model_dir: Union[str, os.PathLike], device: Union[str, torch.device] = "cpu",
                 dtype: Union[str, torch.dtype] = "float32"):
        device = resolve_device(device)
        self.model_dir = Path(model_dir)
        layout = ModelLayout(self.model_dir).check()
        config = load_tokenizer_config(layout.tokenizer_config)
        resolve_dtype(dtype, device)  # refuse a bad dtype before loading gigabytes
        self._init_parts(load_bicodec(self.model_dir), Wav2Vec2Features.from_folder(layout.wav2vec2_dir),
                         config, device, dtype)

    @classmethod
    def from_parts(cls, bicodec, features: Wav2Vec2Features, config: TokenizerConfig = TokenizerConfig(),
                   device: Union[str, torch.device] = "cpu",
                   dtype: Union[str, torch.dtype] = "float32") -> "BiCodecTokenizer":
        """A tokenizer from already built modules (e.g. random weights for benchmarks)."""
        self = cls.__new__(cls)
        self.model_dir = None
        bicodec.fold_weight_norm()
        self._init_parts(bicodec.eval(), features.eval(), config, resolve_device(device), dtype)
        return self

    def _init_parts(self, bicodec, features: Wav2Vec2Features, config: TokenizerConfig, device: torch.device,
                    dtype: Union[str, torch.dtype]) -> None:
        self.device = device
        self.dtype = resolve_dtype(dtype, device)
        self.config = config
        self.sample_rate = config.sample_rate
        if self.sample_rate != 16000:
            raise TokenizerError(f"tokenizer config: sample_rate {self.sample_rate}, BiCodec needs 16000")
        self.volume_normalize = config.volume_normalize
        self.ref_length = config.ref_length

        self.model = bicodec.to(self.device, self.dtype)
        self.model.mel_transformer.float()  # the STFT front end stays float32
        self.features = features.to(self.device, self.dtype)
        if self.model.encoder.encoder.embed.in_channels != self.features.model.config.hidden_size:
            raise TokenizerError(
                f"BiCodec encoder expects {self.model.encoder.encoder.embed.in_channels}-dim features, "
                f"wav2vec2 gives {self.features.model.config.hidden_size}")
        self.token_num = self.model.token_num
        self.global_codebook_size = self.model.global_codebook_size
        self.semantic_codebook_size = self.model.semantic_codebook_size
        self.hop_length = self.model.hop_length
        #: Threads that load and normalise audio in tokenize_batch.
        self.load_workers = min(8, os.cpu_count() or 1)
        #: Files longer than this (seconds) are refused from their header, before decoding.
        self.max_seconds: Optional[float] = None

    # -- audio ------------------------------------------------------------------------
    def load(self, path_or_array: AudioInput, sample_rate: Optional[int] = None) -> np.ndarray:
        """Load, check and normalise one clip: float64 at 16 kHz, as the model sees it."""
        wav = load_audio(path_or_array, sample_rate=sample_rate, target_sr=self.sample_rate,
                         volume_normalize=False, max_seconds=self.max_seconds)
        what = _describe(path_or_array)
        if len(wav) < self.features.min_samples:
            raise TokenizerError(
                f"{what}: too short ({len(wav)} samples at 16 kHz; at least {self.features.min_samples}, "
                f"one wav2vec2 frame, are needed)", reason="audio_too_short")
        peak = float(np.max(np.abs(wav)))
        if peak < SILENCE_PEAK:
            raise TokenizerError(f"{what}: silent (peak {peak:.2g} below {SILENCE_PEAK:g})", reason="silent_audio")
        return volume_normalize(wav) if self.volume_normalize else wav

    def num_frames(self, n_samples: int) -> int:
        """Semantic tokens for ``n_samples`` samples at 16 kHz."""
        return self.features.num_frames(n_samples)

    # -- tokenize -----------------------------------------------------------------------
    def tokenize(self, path_or_array: AudioInput, sample_rate: Optional[int] = None) -> TokenPair:
        """One clip -> (global_tokens (1, 32), semantic_tokens (1, T)), int64 CPU tensors."""
        return self._in_range(self.tokenize_wavs([self.load(path_or_array, sample_rate)])[0])

    def tokenize_batch(self, items: Sequence[AudioInput], sample_rates: Optional[Sequence[Optional[int]]] = None,
                       batch_size: int = 16, errors: str = "raise") -> List[Union[TokenPair, TokenizerError]]:
        """Many clips -> one (global, semantic) pair per clip, in input order.

        Clips are sorted by length and run ``batch_size`` at a time as padded batches; the
        result equals :meth:`tokenize` on each clip. With ``errors="return"`` a clip that
        cannot be tokenized yields its :class:`TokenizerError` instead of raising.
        """
        if errors not in ("raise", "return"):
            raise ValueError("errors must be 'raise' or 'return'")
        if sample_rates is None:
            sample_rates = [None] * len(items)
        if len(sample_rates) != len(items):
            raise TokenizerError(f"{len(items)} clips but {len(sample_rates)} sample rates")
        out: List[Union[TokenPair, TokenizerError, None]] = [None] * len(items)
        wavs = {}
        for i, loaded in enumerate(self._load_many(items, sample_rates)):
            if isinstance(loaded, TokenizerError):
                if errors == "raise":
                    raise loaded
                out[i] = loaded
            else:
                wavs[i] = loaded
        for idx, pairs in self._run_sorted(wavs, batch_size, self.tokenize_wavs):
            for i, pair in zip(idx, pairs):
                try:
                    out[i] = self._in_range(pair)
                except TokenizerError as e:
                    if errors == "raise":
                        raise
                    out[i] = e
        return out  # type: ignore[return-value]

    def _in_range(self, pair: TokenPair) -> TokenPair:
        """Tokens as produced, checked against the codebooks: NaN weights (a damaged or
        badly converted checkpoint) turn into -2**31 when quantised, which no later step
        would notice."""
        for name, t, size in (("global", pair[0], self.global_codebook_size),
                              ("semantic", pair[1], self.semantic_codebook_size)):
            lo, hi = int(t.min()), int(t.max())
            if lo < 0 or hi >= size:
                raise TokenizerError(f"the model produced {name} tokens outside 0..{size - 1} (got {lo}..{hi}); "
                                     "its weights are probably damaged (NaN or inf): check or re-download the "
                                     "model folder", reason="tokens_out_of_range")
        return pair

    def _load_many(self, items, sample_rates) -> List[Union[np.ndarray, TokenizerError]]:
        """Load clips in threads: the front end (decode, resample, the sort inside volume
        normalisation) releases the GIL and otherwise dominates batched GPU runs."""
        def one(args):
            try:
                return self.load(*args)
            except TokenizerError as e:
                return e

        jobs = list(zip(items, sample_rates))
        workers = min(self.load_workers, len(jobs))
        if workers <= 1:
            return [one(j) for j in jobs]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(one, jobs))

    @staticmethod
    def _run_sorted(wavs: dict, batch_size: int, fn):
        order = sorted(wavs, key=lambda i: len(wavs[i]))
        for start in range(0, len(order), max(1, int(batch_size))):
            idx = order[start:start + max(1, int(batch_size))]
            yield idx, fn([wavs[i] for i in idx])

    def tokenize_wavs(self, wavs: Sequence[np.ndarray]) -> List[TokenPair]:
        """Already loaded clips (outputs of :meth:`load`) -> token pairs, as one padded batch."""
        n = [len(w) for w in wavs]
        frames = [self.num_frames(k) for k in n]
        values = np.zeros((len(wavs), max(n)), dtype=np.float32)
        for i, w in enumerate(wavs):
            values[i, :n[i]] = self.features.normalize(w)
        refs = np.stack([reference_clip(w, self.ref_length) for w in wavs]).astype(np.float32)
        padded = len(set(n)) > 1
        with _inference(self.device, self.dtype):
            iv = torch.from_numpy(values).to(self.device, self.dtype)
            fl = torch.tensor(frames, device=self.device)
            feat = self.features(iv, fl if padded else None)
            mask = None
            if padded:
                t = feat.shape[1]
                mask = (torch.arange(t, device=self.device)[None, :] < fl[:, None]).unsqueeze(1).to(feat.dtype)
            semantic = self.model.semantic_tokens(feat, mask).cpu()
            glob = self.model.global_tokens(torch.from_numpy(refs).to(self.device)).cpu()
        return [(glob[i].reshape(1, -1).long(), semantic[i, :frames[i]].reshape(1, -1).long())
                for i in range(len(wavs))]

    # -- detokenize ---------------------------------------------------------------------
    def _check_tokens(self, global_tokens: TokensLike, semantic_tokens: TokensLike) -> Tuple[torch.Tensor, torch.Tensor]:
        g = _as_int_tensor(global_tokens, "global_tokens").reshape(-1)
        s = _as_int_tensor(semantic_tokens, "semantic_tokens")
        if s.dim() == 2 and s.shape[0] == 1:
            s = s[0]
        if s.dim() != 1:
            raise TokenizerError(f"semantic_tokens must have shape (T,) or (1, T), got {tuple(s.shape)}")
        if g.numel() != self.token_num:
            raise TokenizerError(f"global_tokens must hold {self.token_num} values, got {g.numel()}")
        if s.numel() == 0:
            raise TokenizerError("semantic_tokens is empty")
        for name, t, size in (("global_tokens", g, self.global_codebook_size),
                              ("semantic_tokens", s, self.semantic_codebook_size)):
            lo, hi = int(t.min()), int(t.max())
            if lo < 0 or hi >= size:
                raise TokenizerError(f"{name} out of range: values must be in [0, {size - 1}], got {lo}..{hi}")
        return g, s

    def detokenize(self, global_tokens: TokensLike, semantic_tokens: TokensLike) -> np.ndarray:
        """(32 global, T semantic) -> float32 waveform at 16 kHz, 320 * T samples."""
        return self.detokenize_batch([global_tokens], [semantic_tokens])[0]

    def detokenize_batch(self, global_tokens: Sequence[TokensLike], semantic_tokens: Sequence[TokensLike],
                         batch_size: int = 16) -> List[np.ndarray]:
        """Lists of token sets -> one waveform each; padded batches equal one-at-a-time results."""
        if len(global_tokens) != len(semantic_tokens):
            raise TokenizerError(f"{len(global_tokens)} global token sets but {len(semantic_tokens)} semantic")
        checked = {i: self._check_tokens(g, s) for i, (g, s) in enumerate(zip(global_tokens, semantic_tokens))}
        out: List[Optional[np.ndarray]] = [None] * len(checked)
        order = sorted(checked, key=lambda i: checked[i][1].numel())
        step = max(1, int(batch_size))
        for start in range(0, len(order), step):
            idx = order[start:start + step]
            for i, wav in zip(idx, self._detokenize_padded([checked[i] for i in idx])):
                out[i] = wav
        return out  # type: ignore[return-value]

    def _detokenize_padded(self, pairs: List[Tuple[torch.Tensor, torch.Tensor]]) -> List[np.ndarray]:
        lengths = [s.numel() for _, s in pairs]
        t = max(lengths)
        sem = torch.zeros(len(pairs), t, dtype=torch.long)
        for i, (_, s) in enumerate(pairs):
            sem[i, :s.numel()] = s
        glob = torch.stack([g for g, _ in pairs]).reshape(len(pairs), 1, -1)
        with _inference(self.device, self.dtype):
            mask = None
            if len(set(lengths)) > 1:
                ln = torch.tensor(lengths, device=self.device)
                mask = (torch.arange(t, device=self.device)[None, :] < ln[:, None]).unsqueeze(1).to(self.dtype)
            wav = self.model.detokenize(sem.to(self.device), glob.to(self.device), mask).float().cpu()
        return [wav[i, 0, :lengths[i] * self.hop_length].numpy() for i in range(len(pairs))]

    # -- speaker embedding -----------------------------------------------------------
    def speaker_embedding(self, path_or_array: AudioInput, sample_rate: Optional[int] = None) -> np.ndarray:
        """ECAPA x-vector of the clip's 6 s reference segment, float32 (out_dim,).

        Uses the checkpoint's x-vector head (attentive statistics pooling -> BatchNorm ->
        Linear), which no tokenize path needs; compare embeddings by cosine similarity.
        """
        wav = self.load(path_or_array, sample_rate)
        ref = torch.from_numpy(reference_clip(wav, self.ref_length).astype(np.float32))[None]
        with _inference(self.device, self.dtype):
            return self.model.x_vector(ref.to(self.device)).float().cpu().numpy()[0]

    def d_vector(self, global_tokens: TokensLike) -> np.ndarray:
        """The decoder's speaker conditioning vector for 32 global tokens, float32 (out_dim,)."""
        g = _as_int_tensor(global_tokens, "global_tokens").reshape(1, 1, -1)
        if g.shape[-1] != self.token_num:
            raise TokenizerError(f"global_tokens must hold {self.token_num} values, got {g.shape[-1]}")
        with _inference(self.device, self.dtype):
            return self.model.d_vector(g.to(self.device)).float().cpu().numpy()[0]


def _as_int_tensor(x: TokensLike, name: str) -> torch.Tensor:
    try:
        t = x.detach().cpu() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    except (TypeError, ValueError):
        raise TokenizerError(f"{name} must be an array of integers") from None
    if t.dtype.is_floating_point:
        if not bool(torch.all(torch.isfinite(t))) or not bool(torch.all(t == t.round())):
            raise TokenizerError(f"{name} must be integers")
    elif t.dtype == torch.bool or t.dtype.is_complex:
        raise TokenizerError(f"{name} must be integers, got {t.dtype}")
    return t.long()
