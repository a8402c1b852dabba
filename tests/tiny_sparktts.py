"""Build a tiny Spark-TTS model folder for tests and benchmarks.

The real LLM cannot be downloaded here, so this makes one with the released layout:
``LLM/`` holds a randomly initialised Qwen2 causal LM (vocabulary 166,000, tiny widths)
and a tokenizer whose ids follow the released layout exactly: a byte-level BPE whose
vocabulary is padded with placeholders up to id 151,642, the Qwen2.5 specials at
151,643..151,664, then the 13,493 Spark-TTS tokens added with ``add_tokens`` in the
SparkVox order, so they land at 151,665..165,157. ``BiCodec/``,
``wav2vec2-large-xlsr-53/`` and ``config.yaml`` are symlinks into the tiny BiCodec
fixture (read-only, never copied into the repo).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from spark_tokenize import prompts as P

N_BASE_SPECIALS = P.BASE_VOCAB_SIZE - P.ENDOFTEXT_ID  # 22 in Qwen2.5


def build_tokenizer(dest: Path) -> None:
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from tokenizers.pre_tokenizers import ByteLevel

    # Byte-level alphabet first so any text (CJK included) tokenizes; placeholders then
    # push the base specials to their real ids.
    vocab = {c: i for i, c in enumerate(sorted(ByteLevel.alphabet()))}
    for i in range(len(vocab), P.ENDOFTEXT_ID):
        vocab[f"<|vbx_unused_{i}|>"] = i
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    specials = [P.ENDOFTEXT, P.IM_START, P.IM_END] + [f"<|vbx_special_{i}|>" for i in range(N_BASE_SPECIALS - 3)]
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    tok.add_tokens([AddedToken(s, special=False, normalized=False) for s in P.added_tokens()])
    dest.mkdir(parents=True, exist_ok=True)
    tok.save(str(dest / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": P.IM_END,
        "pad_token": P.ENDOFTEXT,
        "model_max_length": 32768,
        "clean_up_tokenization_spaces": False,
    }
    (dest / "tokenizer_config.json").write_text(json.dumps(config, indent=2))


def build_llm(dest: Path, hidden: int = 32, layers: int = 2, heads: int = 4, kv_heads: int = 2,
              intermediate: int = 64, seed: int = 0, init_std: float = 0.02) -> None:
    """Random Qwen2ForCausalLM with the released config apart from the widths.

    ``init_std``: spread of the random weights (transformers' default 0.02). Training
    tests use a wider one: with 0.02 the tied embeddings start so small that most of a
    short run goes into growing the logits before anything is learnt."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=P.EMBEDDING_SIZE,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        hidden_act="silu",
        max_position_embeddings=32768,
        rms_norm_eps=1e-6,
        rope_theta=1_000_000.0,
        tie_word_embeddings=True,
        bos_token_id=P.ENDOFTEXT_ID,
        eos_token_id=P.IM_END_ID,
        pad_token_id=P.ENDOFTEXT_ID,
        initializer_range=init_std,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).eval()
    model.save_pretrained(str(dest))


def build_tiny_sparktts(dest: Path, bicodec_dir: Path, **llm_kwargs) -> Path:
    """A full Spark-TTS model folder at ``dest``: tiny LLM + links to the BiCodec fixture."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("config.yaml", "BiCodec", "wav2vec2-large-xlsr-53"):
        link = dest / name
        if not link.exists():
            os.symlink(Path(bicodec_dir).resolve() / name, link)
    build_tokenizer(dest / "LLM")
    build_llm(dest / "LLM", **llm_kwargs)
    return dest


TEXTS = ("Hello world.", "Good morning.", "See you.")


def tiny_training_dataset(root: Path, out: Path, n_train: int, n_val: int, sem_len: int, seed: int = 0) -> Path:
    """A built folder of records ready for ``voxbox train sparktts``: random BiCodec tokens
    (``sem_len`` semantic tokens each), text, gender and levels; the last ``n_val`` are in
    split ``test`` (validation). The audio is silence: training never reads it."""
    import numpy as np
    import soundfile as sf

    from voxbox.record import Utterance
    from voxbox.shards import write_dataset

    rng = np.random.default_rng(seed)
    Path(root).mkdir(parents=True, exist_ok=True)
    recs = []
    for i in range(n_train + n_val):
        path = Path(root) / f"r{i}.wav"
        sf.write(str(path), np.zeros(1600, np.float32), 16000)
        recs.append(Utterance(
            index=f"t_{i:03d}", corpus="t", source_path=path.name, corpus_root=str(root), text=TEXTS[i % 3],
            split="test" if i >= n_train else "train", gender=("male", "female")[i % 2], pitch=120.0,
            syllable_num=2, speech_duration=0.5, speed=4.0, pitch_level=("low", "high", "moderate")[i % 3],
            speed_level=("moderate", "low")[i % 2], pitch_value=170 + i, speed_value=3 + i % 2,
            global_tokens=rng.integers(0, 4096, 32).tolist(), semantic_tokens=rng.integers(0, 8192, sem_len).tolist(),
            sample_rate=16000, num_samples=1600, channels=1, duration=0.1))
    write_dataset(recs, out, name="t", formats=("parquet",))
    return Path(out)
