"""BiCodecTokenizer API: padded batches equal one-at-a-time results; bad input is refused clearly."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from spark_tokenize import BiCodecTokenizer, TokenizerError

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tok(tiny_bicodec):
    return BiCodecTokenizer(tiny_bicodec)


@pytest.fixture(scope="module")
def clips(tiny_bicodec):
    """Real speech of very different lengths (2.8 s, 5.1 s stereo 44.1k) plus short synthetic clips."""
    rng = np.random.default_rng(0)
    b = tiny_bicodec / "cases" / "B" / "B_cmu_arctic_16k_2p8s.wav"
    e = tiny_bicodec / "cases" / "E" / "E_stereo_44k1.wav"
    speech, sr = sf.read(b, dtype="float64")
    short = speech[8000:8000 + 11_025]  # 0.69 s
    tiny = 0.3 * rng.standard_normal(400)  # exactly one wav2vec2 frame
    return [(b, None), (short, sr), (e, None), (tiny, 16000), (speech[:24_000] * 0.5, sr)]


@pytest.mark.slow
def test_batch_equals_one_at_a_time(tok, clips):
    single = [tok.tokenize(x, sample_rate=sr) for x, sr in clips]
    for bs in (16, 2):
        batched = tok.tokenize_batch([x for x, _ in clips], [sr for _, sr in clips], batch_size=bs)
        for (g1, s1), (g2, s2) in zip(single, batched):
            assert torch.equal(g1, g2)
            assert torch.equal(s1, s2)
    assert [s.shape[1] for _, s in single] == [140, 34, 256, 1, 74]


@pytest.mark.slow
def test_padded_features_match_and_padding_matters(tok, clips):
    """At feature level the padded batch matches each clip alone; without the frame
    lengths (no mask, unzeroed padding) the shorter clip's features change."""
    wavs = [tok.load(x, sr) for x, sr in clips[:3]]
    n = [len(w) for w in wavs]
    values = np.zeros((3, max(n)), dtype=np.float32)
    for i, w in enumerate(wavs):
        values[i, :n[i]] = tok.features.normalize(w)
    frames = torch.tensor([tok.num_frames(k) for k in n])
    with torch.inference_mode():
        padded = tok.features(torch.from_numpy(values), frames)
        unmasked = tok.features(torch.from_numpy(values))
        for i, w in enumerate(wavs):
            alone = tok.features(torch.from_numpy(tok.features.normalize(w))[None])[0]
            assert torch.allclose(padded[i, :frames[i]], alone, atol=2e-5, rtol=0)
        short = 1
        alone = tok.features(torch.from_numpy(tok.features.normalize(wavs[short]))[None])[0]
        assert (unmasked[short, :frames[short]] - alone).abs().max() > 1e-2


@pytest.mark.slow
def test_detokenize_batch_equals_one_at_a_time(tok, clips):
    pairs = [tok.tokenize(x, sample_rate=sr) for x, sr in clips]
    single = [tok.detokenize(g, s) for g, s in pairs]
    batched = tok.detokenize_batch([g for g, _ in pairs], [s for _, s in pairs])
    for (g, s), a, b in zip(pairs, single, batched):
        assert a.dtype == np.float32 and a.shape == (320 * s.shape[1],)
        assert b.shape == a.shape
        assert np.abs(a - b).max() < 2e-5


@pytest.mark.slow
def test_token_formats_accepted_by_detokenize(tok, clips):
    g, s = tok.tokenize(*clips[1])
    ref = tok.detokenize(g, s)
    for gg, ss in [(g.reshape(1, 1, 32), s), (g.numpy().reshape(-1).tolist(), s.numpy()[0].tolist()),
                   (g.reshape(-1).int(), s.reshape(-1).int())]:
        np.testing.assert_array_equal(tok.detokenize(gg, ss), ref)


def test_bad_audio_is_refused(tok, tmp_path):
    with pytest.raises(TokenizerError, match="too short"):
        tok.tokenize(np.full(399, 0.2), sample_rate=16000)
    with pytest.raises(TokenizerError, match="too short"):
        tok.tokenize(np.full(1000, 0.2), sample_rate=48000)  # 333 samples at 16 kHz
    with pytest.raises(TokenizerError, match="silent"):
        tok.tokenize(np.zeros(16000), sample_rate=16000)
    noisy = np.random.default_rng(1).standard_normal(16000) * 0.1
    noisy[100] = np.nan
    with pytest.raises(TokenizerError, match="NaN"):
        tok.tokenize(noisy, sample_rate=16000)
    with pytest.raises(TokenizerError, match="not found"):
        tok.tokenize(tmp_path / "missing.wav")
    (tmp_path / "junk.wav").write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(TokenizerError, match="cannot read audio"):
        tok.tokenize(tmp_path / "junk.wav")
    with pytest.raises(TokenizerError, match="needs its sample_rate"):
        tok.tokenize(np.ones(16000) * 0.1)
    with pytest.raises(TokenizerError, match="floating point"):
        tok.tokenize(np.ones(16000, dtype=np.int16), sample_rate=16000)


def test_silent_file_is_refused(tok, tmp_path):
    p = tmp_path / "silence.wav"
    sf.write(p, np.zeros(24000), 24000, subtype="PCM_16")
    with pytest.raises(TokenizerError, match="silent"):
        tok.tokenize(p)


@pytest.mark.slow
def test_batch_returns_errors_in_place(tok, clips):
    items = [clips[3][0], np.zeros(8000), clips[1][0]]
    out = tok.tokenize_batch(items, [16000, 16000, clips[1][1]], errors="return")
    assert isinstance(out[1], TokenizerError) and "silent" in str(out[1])
    assert torch.equal(out[0][1], tok.tokenize(clips[3][0], 16000)[1])
    assert torch.equal(out[2][1], tok.tokenize(*clips[1])[1])
    with pytest.raises(TokenizerError, match="silent"):
        tok.tokenize_batch(items, [16000, 16000, clips[1][1]])


def test_bad_tokens_are_refused(tok):
    g = np.arange(32)
    s = np.arange(10)
    with pytest.raises(TokenizerError, match="hold 32 values, got 31"):
        tok.detokenize(g[:31], s)
    with pytest.raises(TokenizerError, match=r"global_tokens out of range.*\[0, 4095\]"):
        tok.detokenize(g + 4090, s)
    with pytest.raises(TokenizerError, match=r"semantic_tokens out of range.*\[0, 8191\]"):
        tok.detokenize(g, s + 8190)
    with pytest.raises(TokenizerError, match="out of range"):
        tok.detokenize(g, s - 1)
    with pytest.raises(TokenizerError, match="empty"):
        tok.detokenize(g, [])
    with pytest.raises(TokenizerError, match="must be integers"):
        tok.detokenize(g, s + 0.5)
    with pytest.raises(TokenizerError, match=r"shape \(T,\) or \(1, T\)"):
        tok.detokenize(g, np.zeros((2, 5), dtype=int))
    with pytest.raises(TokenizerError, match="1 global token sets but 2"):
        tok.detokenize_batch([g], [s, s])


@pytest.mark.slow
def test_speaker_embedding(tok, clips, tiny_bicodec):
    e1 = tok.speaker_embedding(clips[0][0])
    speech, sr = sf.read(clips[0][0], dtype="float64")
    e2 = tok.speaker_embedding(speech, sample_rate=sr)
    assert e1.shape == (64,) and e1.dtype == np.float32 and np.all(np.isfinite(e1))
    np.testing.assert_array_equal(e1, e2)
    e3 = tok.speaker_embedding(clips[2][0])
    assert np.abs(e1 - e3).max() > 1e-3


@pytest.mark.slow
def test_nan_weights_are_caught_when_tokens_are_made(tiny_bicodec, clips):
    # NaN weights quantise to -2**31; those tokens used to be written with exit 0.
    t = BiCodecTokenizer(tiny_bicodec)
    with torch.no_grad():
        for p in t.model.parameters():
            p.fill_(float("nan"))
    with pytest.raises(TokenizerError, match=r"global tokens outside 0\.\.4095 \(got -2147483648") as e:
        t.tokenize(*clips[0])
    assert e.value.reason == "tokens_out_of_range"
    got = t.tokenize_batch([c[0] for c in clips[:2]], [c[1] for c in clips[:2]], errors="return")
    assert [getattr(x, "reason", None) for x in got] == ["tokens_out_of_range"] * 2


def test_long_and_special_files_are_refused_before_decoding(tok, clips, tmp_path):
    import os

    tok.max_seconds = 1.0
    try:
        with pytest.raises(TokenizerError, match=r"2\.\d s, longer than the 1 s allowed") as e:
            tok.tokenize(clips[0][0])
        assert e.value.reason == "too_long"
    finally:
        tok.max_seconds = None
    os.mkfifo(tmp_path / "fifo.wav")    # reading it would block forever
    with pytest.raises(TokenizerError, match="not a regular file") as e:
        tok.tokenize(tmp_path / "fifo.wav")
    assert e.value.reason == "not_a_regular_file"
