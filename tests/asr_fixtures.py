"""A tiny random Whisper, made offline at test time, for the ASR plug-in tests.

The tokenizer is a byte-level BPE with no merges whose vocabulary is the byte-level
characters of the space and a-z plus Whisper's special tokens, so whatever the random
model emits decodes to lower-case letters and spaces. Weights are random (seeded) with a
large init scale, so different audio gives different hypotheses. Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

SPECIALS = ("<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|translate|>",
            "<|notimestamps|>", "<|startofprev|>", "<|nospeech|>")


def _byte_char(b: int) -> str:
    """GPT-2's byte-level alphabet: printable Latin-1 bytes stand for themselves, the others
    are shifted past 255 in byte order."""
    keep = set(range(33, 127)) | set(range(161, 173)) | set(range(174, 256))
    if b in keep:
        return chr(b)
    return chr(256 + sum(1 for x in range(b) if x not in keep))


def make_tiny_whisper(dest: Path, seed: int = 0) -> Path:
    import torch
    from transformers import (GenerationConfig, WhisperConfig, WhisperFeatureExtractor,
                              WhisperForConditionalGeneration, WhisperProcessor, WhisperTokenizer)

    vocab = {_byte_char(b): i for i, b in enumerate(b" abcdefghijklmnopqrstuvwxyz")}
    for s in SPECIALS:
        vocab[s] = len(vocab)
    tok = WhisperTokenizer(vocab=dict(vocab), merges=[], unk_token=SPECIALS[0], bos_token=SPECIALS[0],
                           eos_token=SPECIALS[0], pad_token=SPECIALS[0], additional_special_tokens=list(SPECIALS[1:]))
    end, start = vocab[SPECIALS[0]], vocab["<|startoftranscript|>"]
    cfg = WhisperConfig(vocab_size=len(vocab), num_mel_bins=80, d_model=16, encoder_layers=1, decoder_layers=1,
                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                        init_std=0.5, scale_embedding=True, max_source_positions=1500, max_target_positions=64,
                        decoder_start_token_id=start, eos_token_id=end, pad_token_id=end, bos_token_id=end,
                        begin_suppress_tokens=None, suppress_tokens=None)
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(cfg).eval()
    model.generation_config = GenerationConfig(
        decoder_start_token_id=start, eos_token_id=end, pad_token_id=end, max_length=24,
        no_timestamps_token_id=vocab["<|notimestamps|>"], is_multilingual=False)
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest)
    WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=80), tokenizer=tok).save_pretrained(dest)
    return dest
