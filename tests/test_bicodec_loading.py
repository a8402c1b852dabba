"""Loading a model folder: both wav2vec2 layouts, and clear errors for broken folders."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import yaml

from spark_tokenize import BiCodecTokenizer, TokenizerError
from spark_tokenize.bicodec import BiCodecConfig
from spark_tokenize.bicodec.config import to_dict

torch.set_num_threads(1)


def _model_dir(tmp_path, tiny, skip=()):
    """A model folder in tmp_path whose files link to the fixture's (nothing copied)."""
    root = tmp_path / "model"
    for rel in ("config.yaml", "BiCodec/config.yaml", "BiCodec/model.safetensors",
                "wav2vec2-large-xlsr-53/config.json", "wav2vec2-large-xlsr-53/preprocessor_config.json",
                "wav2vec2-large-xlsr-53/model.safetensors"):
        if rel in skip:
            continue
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(tiny / rel, root / rel)
    return root


def _expected(tiny, case):
    d = tiny / "cases" / case
    g = np.asarray(json.loads((d / "global_tokens.json").read_text())["tokens"]).reshape(-1)
    s = np.asarray(json.loads((d / "semantic_tokens.json").read_text())["tokens"]).reshape(-1)
    return g, s


@pytest.mark.slow
def test_real_wav2vec2_layout_pretraining_bin(tmp_path, tiny_bicodec):
    """The published folder ships Wav2Vec2ForPreTraining weights in pytorch_model.bin, with a
    `wav2vec2.` prefix, legacy weight_g/weight_v names and the pre-training heads."""
    from safetensors.torch import load_file
    from transformers import Wav2Vec2Config, Wav2Vec2ForPreTraining

    root = _model_dir(tmp_path, tiny_bicodec, skip=("wav2vec2-large-xlsr-53/model.safetensors",))
    w2v = tiny_bicodec / "wav2vec2-large-xlsr-53"
    config = Wav2Vec2Config.from_json_file(str(w2v / "config.json"))
    pre = Wav2Vec2ForPreTraining(config)
    pre.wav2vec2.load_state_dict(load_file(str(w2v / "model.safetensors")))
    state = {}
    for k, v in pre.state_dict().items():
        k = k.replace("pos_conv_embed.conv.parametrizations.weight.original0", "pos_conv_embed.conv.weight_g")
        k = k.replace("pos_conv_embed.conv.parametrizations.weight.original1", "pos_conv_embed.conv.weight_v")
        state[k] = v
    assert any(k.startswith("project_q.") for k in state)
    assert "wav2vec2.encoder.pos_conv_embed.conv.weight_g" in state
    torch.save(state, root / "wav2vec2-large-xlsr-53" / "pytorch_model.bin")

    tok = BiCodecTokenizer(root)
    g, s = tok.tokenize(tiny_bicodec / "cases" / "B" / "B_cmu_arctic_16k_2p8s.wav")
    eg, es = _expected(tiny_bicodec, "B")
    np.testing.assert_array_equal(g.numpy().reshape(-1), eg)
    assert int((s.numpy().reshape(-1) != es).sum()) <= 1  # frame 41 is a listed near-tie


def test_missing_folder_and_files(tmp_path, tiny_bicodec):
    with pytest.raises(TokenizerError, match="model folder not found"):
        BiCodecTokenizer(tmp_path / "nope")
    root = _model_dir(tmp_path, tiny_bicodec, skip=("BiCodec/model.safetensors",))
    with pytest.raises(TokenizerError, match=r"lacks BiCodec/model.safetensors"):
        BiCodecTokenizer(root)


def test_missing_wav2vec2_weights(tmp_path, tiny_bicodec):
    root = _model_dir(tmp_path, tiny_bicodec, skip=("wav2vec2-large-xlsr-53/model.safetensors",))
    with pytest.raises(TokenizerError, match="pytorch_model.bin"):
        BiCodecTokenizer(root)


def test_wrong_architecture_names_first_offending_key(tmp_path, tiny_bicodec):
    """The full-size config with the tiny weights: the first key differs in shape."""
    root = _model_dir(tmp_path, tiny_bicodec, skip=("BiCodec/config.yaml",))
    (root / "BiCodec" / "config.yaml").write_text(yaml.safe_dump({"audio_tokenizer": to_dict(BiCodecConfig())}))
    with pytest.raises(TokenizerError, match=r"'encoder\.encoder\.embed\.weight' has shape \(32, 64, 7\)"):
        BiCodecTokenizer(root)


def test_missing_and_unexpected_keys(tmp_path, tiny_bicodec):
    from safetensors.torch import load_file, save_file

    state = load_file(str(tiny_bicodec / "BiCodec" / "model.safetensors"))
    root = _model_dir(tmp_path, tiny_bicodec, skip=("BiCodec/model.safetensors",))
    dropped = dict(state)
    del dropped["quantizer.codebook.weight"]
    save_file(dropped, str(root / "BiCodec" / "model.safetensors"))
    with pytest.raises(TokenizerError, match=r"missing key 'quantizer\.codebook\.weight'"):
        BiCodecTokenizer(root)
    extra = dict(state)
    extra["encoder.extra.weight"] = torch.zeros(3)
    save_file(extra, str(root / "BiCodec" / "model.safetensors"))
    with pytest.raises(TokenizerError, match=r"unexpected key 'encoder\.extra\.weight'"):
        BiCodecTokenizer(root)
    # A checkpoint re-saved by the torchaudio-based official code has the two mel buffers.
    resaved = dict(state)
    resaved["mel_transformer.spectrogram.window"] = torch.hann_window(640)
    resaved["mel_transformer.mel_scale.fb"] = torch.zeros(513, 128)
    save_file(resaved, str(root / "BiCodec" / "model.safetensors"))
    tok = BiCodecTokenizer(root)
    assert tok.model.mel_transformer.fb.abs().sum() > 0  # ours, computed, not the file's


def test_wav2vec2_too_shallow_is_refused(tmp_path, tiny_bicodec):
    root = _model_dir(tmp_path, tiny_bicodec, skip=("wav2vec2-large-xlsr-53/config.json",))
    cfg = json.loads((tiny_bicodec / "wav2vec2-large-xlsr-53" / "config.json").read_text())
    cfg["num_hidden_layers"] = 12
    (root / "wav2vec2-large-xlsr-53" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(TokenizerError, match="needs 16"):
        BiCodecTokenizer(root)


def test_corrupt_weights_file(tmp_path, tiny_bicodec):
    root = _model_dir(tmp_path, tiny_bicodec, skip=("BiCodec/model.safetensors",))
    (root / "BiCodec" / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(TokenizerError, match="cannot read"):
        BiCodecTokenizer(root)


def test_dtype_and_device_choices(tiny_bicodec):
    with pytest.raises(TokenizerError, match="float16 is known to break"):
        BiCodecTokenizer(tiny_bicodec, dtype="float16")
    with pytest.raises(TokenizerError, match="only supported on CUDA"):
        BiCodecTokenizer(tiny_bicodec, dtype="bfloat16")
    if not torch.cuda.is_available():
        with pytest.raises(TokenizerError, match="CUDA is not available"):
            BiCodecTokenizer(tiny_bicodec, device="cuda")


def _with_bicodec_config(tmp_path, tiny, edit):
    """The fixture folder with its BiCodec/config.yaml edited by ``edit(block_mapping)``."""
    root = _model_dir(tmp_path, tiny, skip=("BiCodec/config.yaml",))
    data = yaml.safe_load((tiny / "BiCodec" / "config.yaml").read_text())
    edit(data["audio_tokenizer"])
    (root / "BiCodec" / "config.yaml").write_text(yaml.safe_dump(data))
    return root


def test_config_reads_into_frozen_dataclasses(tiny_bicodec):
    import dataclasses
    from pathlib import Path

    from spark_tokenize.bicodec.config import from_mapping, load_bicodec_config, load_tokenizer_config

    cfg = load_bicodec_config(Path(tiny_bicodec) / "BiCodec" / "config.yaml")
    assert cfg.encoder.vocos_dim == 32 and cfg.prenet.condition_dim == 64
    assert cfg.postnet.condition_dim is None and cfg.postnet.sample_ratios == (1, 1)  # class defaults
    assert cfg.decoder.rates == (8, 5, 4, 2) and cfg.mel_params.mel_fmax is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.encoder.vocos_dim = 64
    tcfg = load_tokenizer_config(Path(tiny_bicodec) / "config.yaml")
    assert tcfg.ref_length == 96000 and tcfg.volume_normalize is True
    # The defaults are the official full-size model, and a config survives its YAML form.
    full = BiCodecConfig()
    assert (full.encoder.vocos_num_layers, full.prenet.condition_dim, full.postnet.vocos_num_layers) == (12, 1024, 6)
    assert from_mapping(BiCodecConfig, yaml.safe_load(yaml.safe_dump(to_dict(full))), "x") == full


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["encoder"].pop("vocos_dim"), r"encoder: lacks 'vocos_dim'"),
    (lambda c: c.pop("prenet"), r"lacks 'prenet'"),
    (lambda c: c["encoder"].update(vocos_dims=32), r"encoder: unknown key 'vocos_dims' \(did you mean 'vocos_dim'\?\)"),
    (lambda c: c["decoder"].update(rates="8,5,4,2"), r"decoder: rates: expected a non-empty list"),
    (lambda c: c["encoder"].update(vocos_num_layers=2.5), r"encoder: vocos_num_layers: expected int, got 2.5"),
    (lambda c: c["prenet"].update(use_tanh_at_final=1), r"prenet: use_tanh_at_final: expected bool, got 1"),
    (lambda c: c.update(encoder=[1, 2]), r"encoder: expected a mapping, got list"),
])
def test_bad_bicodec_config_is_refused_naming_the_key(tmp_path, tiny_bicodec, edit, message):
    with pytest.raises(TokenizerError, match=message):
        BiCodecTokenizer(_with_bicodec_config(tmp_path, tiny_bicodec, edit))


@pytest.mark.slow
def test_config_keys_the_official_loader_ignores_are_ignored(tmp_path, tiny_bicodec):
    """The quantizer swallows extra keys and unknown blocks are not read, as in the reference."""
    def edit(c):
        c["quantizer"]["decay"] = 0.99
        c["discriminator"] = {"periods": [2, 3]}

    tok = BiCodecTokenizer(_with_bicodec_config(tmp_path, tiny_bicodec, edit))
    g, s = tok.tokenize(tiny_bicodec / "cases" / "B" / "B_cmu_arctic_16k_2p8s.wav")
    np.testing.assert_array_equal(g.numpy().reshape(-1), _expected(tiny_bicodec, "B")[0])


def test_tokenizer_config_needs_its_inference_keys(tmp_path, tiny_bicodec):
    root = _model_dir(tmp_path, tiny_bicodec, skip=("config.yaml",))
    data = yaml.safe_load((tiny_bicodec / "config.yaml").read_text())
    del data["latent_hop_length"]
    (root / "config.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(TokenizerError, match=r"config.yaml: lacks 'latent_hop_length'"):
        BiCodecTokenizer(root)
