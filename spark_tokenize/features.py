"""wav2vec2 semantic features for BiCodec: (h11 + h14 + h16) / 3 of wav2vec2-large-xlsr-53.

The reference runs the whole 24-layer model with ``output_hidden_states`` and mixes
three hidden states. With the pre-LN ("stable layer norm") encoder, hidden state k
(k >= 1) is the raw output of transformer layer k and only the output of the very last
layer gets the final LayerNorm. So the layers after 16 cannot change the tokens: we
build the encoder with 16 layers, never apply its final LayerNorm, and walk the layers
ourselves to collect the raw block outputs (a third less compute).

Batching: the reference feeds one clip at a time, unpadded, without an attention mask.
A padded batch reproduces that exactly because
- the conv feature encoder is "layer"-normed (LayerNorm per frame, no GroupNorm over
  time) and unpadded ("valid" convolutions): a frame within a clip's own frame count
  depends only on that clip's samples;
- utterance normalisation (zero mean, unit variance) is per clip, over its own samples;
- padded frames are zeroed before the positional convolution, which is exactly the zero
  padding that convolution applies at the end of an unpadded clip;
- the attention gets an additive mask so real frames never attend to padded ones (the
  masked weights are exactly 0 after softmax).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import torch
from torch import nn

from .errors import TokenizerError

#: Hidden states mixed into the semantic feature (0 = input of the first layer).
MIX_LAYERS: Tuple[int, int, int] = (11, 14, 16)
#: Frames per chunk of the convolutional front end on the CPU (see ``conv_features``).
CONV_CHUNK_FRAMES = 50

# Pre-training heads of Wav2Vec2ForPreTraining that the bare model does not have.
_PRETRAINING_HEADS = ("quantizer.", "project_q.", "project_hid.")
_LEGACY_POS_CONV = {
    "encoder.pos_conv_embed.conv.weight_g": "encoder.pos_conv_embed.conv.parametrizations.weight.original0",
    "encoder.pos_conv_embed.conv.weight_v": "encoder.pos_conv_embed.conv.parametrizations.weight.original1",
}


def _bare(name: str) -> str:
    return name[len("wav2vec2."):] if name.startswith("wav2vec2.") else name


def _read_wav2vec2_state(folder: Path, keep: Callable[[str], bool] = lambda name: True
                         ) -> Dict[str, torch.Tensor]:
    """Read model.safetensors or pytorch_model.bin; bare-model key names.

    Only tensors whose bare name passes ``keep`` are read into memory (the layers after the
    last mixed one are a third of the file); a .bin file is memory-mapped for the same reason.
    """
    st, binf = folder / "model.safetensors", folder / "pytorch_model.bin"
    try:
        if st.is_file():
            from safetensors import safe_open
            with safe_open(str(st), framework="pt") as f:
                raw = {k: f.get_tensor(k) for k in f.keys() if keep(_bare(k))}
        elif binf.is_file():
            raw = torch.load(str(binf), map_location="cpu", weights_only=True, mmap=True)
            raw = {k: v for k, v in raw.items() if keep(_bare(k))}
        else:
            raise TokenizerError(f"{folder} has neither model.safetensors nor pytorch_model.bin")
    except TokenizerError:
        raise
    except Exception as e:
        raise TokenizerError(f"cannot read the wav2vec2 weights in {folder}: "
                             f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    prefixed = any(k.startswith("wav2vec2.") for k in raw)
    state = {}
    for k, v in raw.items():
        if prefixed:
            if not k.startswith("wav2vec2."):
                if k.startswith(_PRETRAINING_HEADS):
                    continue
                raise TokenizerError(f"{folder}: unexpected key '{k}' in a wav2vec2 checkpoint")
            k = k[len("wav2vec2."):]
        state[_LEGACY_POS_CONV.get(k, k)] = v
    return state


def xlsr53_config():
    """The architecture of facebook/wav2vec2-large-xlsr-53 (24 layers, 1024 wide, pre-LN)."""
    from transformers import Wav2Vec2Config

    return Wav2Vec2Config(
        hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
        conv_dim=(512,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2),
        conv_bias=True, feat_extract_norm="layer", do_stable_layer_norm=True,
        num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16, layer_norm_eps=1e-5,
        hidden_act="gelu", feat_extract_activation="gelu")


class Wav2Vec2Features(nn.Module):
    def __init__(self, model: nn.Module, do_normalize: bool = True, mix_layers=MIX_LAYERS):
        super().__init__()
        self.model = model
        self.do_normalize = do_normalize
        self.mix_layers = tuple(mix_layers)
        cfg = model.config
        self._convs = list(zip(cfg.conv_kernel, cfg.conv_stride))
        self.min_samples = self.receptive_field()
        self._front: Optional["TimeMajorFrontEnd"] = None  # made on first CPU use

    # -- loading ----------------------------------------------------------------------
    @classmethod
    def from_folder(cls, folder: Path, mix_layers=MIX_LAYERS) -> "Wav2Vec2Features":
        from transformers import Wav2Vec2Config, Wav2Vec2Model

        folder = Path(folder)
        cfg_path = folder / "config.json"
        if not cfg_path.is_file():
            raise TokenizerError(f"missing wav2vec2 config: {cfg_path}")
        try:
            config = Wav2Vec2Config.from_json_file(str(cfg_path))
        except Exception as e:
            raise TokenizerError(f"cannot parse {cfg_path}: {str(e).splitlines()[0]}") from None
        need = max(mix_layers)
        if getattr(config, "model_type", None) != "wav2vec2":
            raise TokenizerError(f"{cfg_path}: model_type is {config.model_type!r}, expected 'wav2vec2'")
        if not config.do_stable_layer_norm or config.feat_extract_norm != "layer":
            raise TokenizerError(
                f"{cfg_path}: expected a pre-LN wav2vec2 with a layer-normed feature encoder "
                f"(do_stable_layer_norm true, feat_extract_norm 'layer') like wav2vec2-large-xlsr-53")
        if config.num_hidden_layers < need:
            raise TokenizerError(f"{cfg_path}: {config.num_hidden_layers} transformer layers, "
                                 f"the BiCodec feature mix needs {need}")
        if getattr(config, "adapter_attn_dim", None) is not None or getattr(config, "add_adapter", False):
            raise TokenizerError(f"{cfg_path}: wav2vec2 adapters are not supported")
        n_layers = config.num_hidden_layers
        config.num_hidden_layers = need  # layers after the last mixed one cannot affect the tokens

        prep = {}
        prep_path = folder / "preprocessor_config.json"
        if prep_path.is_file():
            prep = json.loads(prep_path.read_text())
        if int(prep.get("sampling_rate", 16000)) != 16000:
            raise TokenizerError(f"{prep_path}: sampling_rate must be 16000")

        state = _read_wav2vec2_state(
            folder, keep=lambda k: not (k.startswith("encoder.layers.") and int(k.split(".")[2]) >= need))
        with torch.device("meta"):
            model = Wav2Vec2Model(config)
        expected = model.state_dict()
        from .bicodec.checkpoint import check_state_dict
        # masked_spec_embed is only used for SpecAugment in training.
        check_state_dict(expected, state, f"{folder} (wav2vec2, {n_layers} layers)",
                         allowed_missing=("masked_spec_embed",))
        if "masked_spec_embed" in expected and "masked_spec_embed" not in state:
            state["masked_spec_embed"] = torch.zeros(expected["masked_spec_embed"].shape)
        model.load_state_dict(state, strict=True, assign=True)
        conv = model.encoder.pos_conv_embed.conv
        if hasattr(conv, "parametrizations"):
            # Fold the positional-conv weight norm once instead of on every forward.
            torch.nn.utils.parametrize.remove_parametrizations(conv, "weight", leave_parametrized=True)
        model.eval()
        return cls(model, do_normalize=bool(prep.get("do_normalize", True)), mix_layers=mix_layers)

    @classmethod
    def from_config(cls, config, mix_layers=MIX_LAYERS) -> "Wav2Vec2Features":
        """Randomly initialised features from a ``Wav2Vec2Config`` (benchmarks, tests)."""
        from transformers import Wav2Vec2Model

        config.num_hidden_layers = max(mix_layers)
        model = Wav2Vec2Model(config)
        conv = model.encoder.pos_conv_embed.conv
        if hasattr(conv, "parametrizations"):
            torch.nn.utils.parametrize.remove_parametrizations(conv, "weight", leave_parametrized=True)
        return cls(model.eval(), mix_layers=mix_layers)

    # -- geometry ---------------------------------------------------------------------
    def receptive_field(self) -> int:
        """Samples needed for one output frame (400 for wav2vec2)."""
        n = 1
        for k, s in reversed(self._convs):
            n = (n - 1) * s + k
        return n

    def num_frames(self, n_samples: int) -> int:
        for k, s in self._convs:
            n_samples = (n_samples - k) // s + 1
            if n_samples <= 0:
                return 0
        return n_samples

    # -- compute ----------------------------------------------------------------------
    def normalize(self, wav: np.ndarray) -> np.ndarray:
        """The wav2vec2 preprocessor: float32, then per-utterance zero mean / unit variance."""
        x = np.asarray(wav, dtype=np.float32)
        if self.do_normalize:
            x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
        return x

    def conv_features(self, values: torch.Tensor) -> torch.Tensor:
        """(B, N) samples -> (B, T, conv_dim): the convolutional front end, time-major.

        On the CPU it is :class:`TimeMajorFrontEnd` over chunks of ``CONV_CHUNK_FRAMES``
        frames. Each frame depends only on its own window of ``min_samples`` samples
        (unpadded convolutions, LayerNorm per frame), so a chunk computes exactly the frames
        it covers, while its activations stay a few MB instead of ~40 MB per layer for a 6 s
        clip: malloc recycles those instead of faulting in fresh pages, and they stay in
        cache. Every chunk has the same length (the last one overlaps its neighbour; a
        clip shorter than a chunk is zero-padded to one), so every matrix product has the
        same shape and a frame comes out bit for bit the same whatever the clip's length,
        its padding in a batch or its neighbours.
        Elsewhere (CUDA) it is the checkpoint's own modules, transposed.
        """
        fe, cfg = self.model.feature_extractor, self.model.config
        if values.device.type != "cpu" or (cfg.feat_extract_norm, cfg.feat_extract_activation) != ("layer", "gelu"):
            return fe(values).transpose(1, 2)
        if self._front is None:
            self._front = TimeMajorFrontEnd(fe, self._convs)
        t, step = self.num_frames(values.shape[-1]), CONV_CHUNK_FRAMES
        hop = int(np.prod([s for _, s in self._convs]))
        span = (step - 1) * hop + self.min_samples  # samples of one chunk
        if t <= step:  # a short clip is one chunk too, zero-padded: every product has one shape
            return self._front(nn.functional.pad(values, (0, max(0, span - values.shape[-1]))))[:, :t]
        out = values.new_empty((values.shape[0], t, self._front.dim))
        for f0 in range(0, t, step):
            f0 = min(f0, t - step)
            out[:, f0:f0 + step] = self._front(values[:, f0 * hop:f0 * hop + span])
        return out

    def _apply(self, fn, *args, **kwargs):
        self._front = None  # .to(device or dtype): the front end's matrices are made again
        return super()._apply(fn, *args, **kwargs)

    def forward(self, input_values: torch.Tensor,
                frame_lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(B, N) normalised samples (zero-padded) -> mixed features (B, T, hidden).

        ``frame_lengths`` (B,) gives each clip's own frame count when the batch is padded.
        """
        m = self.model
        x = self.conv_features(input_values)
        hidden = m.feature_projection(x)
        hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        b, t, _ = hidden.shape
        attn_mask = None
        if frame_lengths is not None and bool((frame_lengths < t).any()):
            valid = torch.arange(t, device=hidden.device)[None, :] < frame_lengths.to(hidden.device)[:, None]
            hidden = hidden * valid.unsqueeze(-1).to(hidden.dtype)
            attn_mask = torch.zeros(b, 1, 1, t, dtype=hidden.dtype, device=hidden.device)
            attn_mask.masked_fill_(~valid[:, None, None, :], torch.finfo(hidden.dtype).min)
        hidden = hidden + m.encoder.pos_conv_embed(hidden)
        states = {0: hidden}
        for i, layer in enumerate(m.encoder.layers, start=1):
            hidden = layer(hidden, attention_mask=attn_mask)
            hidden = hidden[0] if isinstance(hidden, tuple) else hidden
            states[i] = hidden
        a, bb, c = (states[i] for i in self.mix_layers)
        return (a + bb + c) / 3


class TimeMajorFrontEnd:
    """wav2vec2's layer-normed conv stack on the CPU, time-major: (B, N) -> (B, T, 512).

    The checkpoint's modules (``Wav2Vec2LayerNormConvLayer``) keep activations
    channels-first (B, C, T) and transpose around every LayerNorm, so a fifth of their time
    went to copies. Here activations stay (T, C): a convolution of kernel k and stride s is
    k matrix products, tap j multiplying the rows j, j + s, j + 2s, ... of the input (a
    strided view, no im2col copy) by that tap's (C_in, C_out) weights, accumulated in place
    onto the bias; LayerNorm then normalises each row where it lies. Same arithmetic as the
    convolution up to the order of the sums (within 4e-6 on activations of order 4).
    Built from the modules' current weights; :class:`Wav2Vec2Features` drops it on ``.to()``.
    """

    def __init__(self, fe: nn.Module, convs):
        self.layers = []
        for layer, (k, s) in zip(fe.conv_layers, convs):
            w = layer.conv.weight.detach()                                # (C_out, C_in, k)
            taps = w.permute(2, 1, 0).contiguous()                        # (k, C_in, C_out)
            bias = layer.conv.bias.detach() if layer.conv.bias is not None else w.new_zeros(w.shape[0])
            self.layers.append((taps, bias, layer.layer_norm, k, s))
        self.dim = self.layers[-1][0].shape[-1]

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        # In the weights' own dtype even under a caller's autocast (in-place sums need one dtype).
        with torch.autocast("cpu", enabled=False):
            return torch.stack([self._one(v.to(self.layers[0][0].dtype)) for v in values])

    def _one(self, wav: torch.Tensor) -> torch.Tensor:
        """(N,) samples -> (T, C) frames."""
        x = wav.unsqueeze(-1)                                             # (N, 1)
        for taps, bias, norm, k, s in self.layers:
            t = (x.shape[0] - k) // s + 1
            if x.shape[1] == 1:  # the first layer reads raw samples: one (t, k) window matrix
                y = torch.addmm(bias, x.as_strided((t, k), (s * x.stride(0), x.stride(0))), taps[:, 0])
            else:
                y = torch.addmm(bias, x[0:s * (t - 1) + 1:s], taps[0])
                for j in range(1, k):
                    y.addmm_(x[j:j + s * (t - 1) + 1:s], taps[j])
            y = nn.functional.layer_norm(y, (y.shape[-1],), norm.weight, norm.bias, norm.eps)
            x = nn.functional.gelu(y)                                     # (t, C_out)
        return x
