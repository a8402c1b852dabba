"""Speaker embeddings: our GE2E against the resemblyzer package itself, float16 storage
through every format, and the BiCodec ECAPA backend."""

from __future__ import annotations

import json
import sys
import types
from importlib import metadata

import numpy as np
import pytest

from voxbox.annotate.embeddings import GE2EConfig, GE2EEncoder, partial_starts
from voxbox.annotate.stage import AnnotateStage
from voxbox.errors import VoxboxError
from voxbox.record import Utterance


def one_clip_per_speaker(shared):
    root = shared / "data" / "real-speech"
    seen, out = set(), []
    for line in (root / "manifest.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r["speaker"] not in seen:
            seen.add(r["speaker"])
            out.append((root / r["path"], r))
    return out


@pytest.fixture(scope="module")
def resemblyzer(monkeypatch_module):
    """The package's own code. Its import chain needs pkg_resources (webrtcvad reads its
    version with it), which recent setuptools removed; a stand-in answers that one call."""
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        shim = types.ModuleType("pkg_resources")
        shim.get_distribution = lambda name: types.SimpleNamespace(version=metadata.version(name))
        monkeypatch_module.setitem(sys.modules, "pkg_resources", shim)
    import resemblyzer

    return resemblyzer


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_partial_slices_match_resemblyzer(resemblyzer):
    from resemblyzer import VoiceEncoder

    cfg = GE2EConfig()
    for n in [1, 100, 15999, 16000, 25600, 25601, 30000, 47999, 48000, 123457, 16000 * 9 + 17]:
        _wav, mel = VoiceEncoder.compute_partial_slices(n, cfg.partial_rate, cfg.min_coverage)
        assert partial_starts(n, cfg) == [s.start for s in mel], n


@pytest.mark.slow
def test_ge2e_reproduces_resemblyzer_on_real_clips(resemblyzer, shared):
    """Same waveform in (resemblyzer's own preprocessing of each file), same embedding out:
    one clip of each of the 24 real-speech speakers, 16 to 48 kHz sources."""
    from resemblyzer import VoiceEncoder, preprocess_wav

    ref_encoder = VoiceEncoder("cpu", verbose=False)
    ours = GE2EEncoder()
    wavs = [preprocess_wav(path) for path, _ in one_clip_per_speaker(shared)]
    assert len(wavs) == 24
    ref = np.stack([ref_encoder.embed_utterance(w) for w in wavs])
    batched = ours.embed_batch(wavs)
    single = np.stack([ours.embed_batch([w])[0] for w in wavs])
    assert np.abs(batched - ref).max() < 1e-5
    assert np.array_equal(batched, single)  # bit for bit: the batch does not change a clip
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-6)
    # Not a constant: different speakers are far apart, so the check above means something.
    assert (ref @ ref.T)[np.triu_indices(24, 1)].min() < 0.5


def test_missing_weights_and_unknown_backend_are_clear_errors(tmp_path):
    from voxbox.annotate.embeddings import check_encoder_spec

    with pytest.raises(VoxboxError, match="unknown embedding model 'xvec'"):
        check_encoder_spec("xvec")
    with pytest.raises(VoxboxError, match="not a Spark-TTS model folder"):
        check_encoder_spec(f"ecapa:{tmp_path}")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(VoxboxError, match="cannot read the GE2E weights"):
        GE2EEncoder(weights=bad)
    with pytest.raises(VoxboxError, match="unknown embedding model"):
        AnnotateStage(embeddings=True, embedding_model="xvec")


@pytest.mark.slow
def test_embeddings_stored_as_float16_in_every_format(tmp_path, shared):
    """annotate --embeddings: a unit float16 vector per record that reads back identically
    from JSONL, JSONL.gz, Parquet (a float16 column) and the built shards."""
    import pyarrow.parquet as pq

    from voxbox.manifest import half_floats, read_manifest, write_manifest
    from voxbox.shards import write_dataset
    from voxbox.dataset import open_dataset
    from voxbox.dataset.reader import hf_record_features

    clips = one_clip_per_speaker(shared)[:4]
    recs = [Utterance(index=f"c{i}", text=r["text"], source_path=str(p), corpus_root="/", corpus="real",
                      speaker=r["speaker"]) for i, (p, r) in enumerate(clips)]
    out = AnnotateStage(embeddings=True).process_batch(recs)
    for rec in out:
        v = np.asarray(rec.embedding)
        assert v.shape == (256,) and rec.embedding_model == "ge2e-resemblyzer"
        # float16 values, written short: they read back to the same float16 and format the same.
        assert half_floats(v.astype(np.float16)) == rec.embedding
        assert abs(np.linalg.norm(v) - 1.0) < 2e-3
    for name in ("m.jsonl", "m.jsonl.gz", "m.parquet"):
        write_manifest(tmp_path / name, out)
        assert [r.embedding for r in read_manifest(tmp_path / name)] == [r.embedding for r in out], name
    assert str(pq.read_schema(tmp_path / "m.parquet").field("embedding").type) == "list<element: halffloat>"
    assert str(hf_record_features()["embedding"]) == "List(Value('float16'))"
    write_dataset(out, tmp_path / "built", name="t")
    for fmt in ("webdataset", "parquet"):
        back = {r.index: r.embedding for r in open_dataset(tmp_path / "built").records(fmt)}
        assert back == {r.index: r.embedding for r in out}, fmt


@pytest.mark.slow
def test_ecapa_backend_from_a_spark_tts_folder(tiny_bicodec, shared):
    """The second backend: BiCodec's ECAPA x-vector of the clip's 6 s reference segment,
    the vector the tokenizer's own speaker_embedding gives, unit-normalised."""
    import torch

    from spark_tokenize import BiCodecTokenizer
    from spark_tokenize.audio import reference_clip
    from voxbox.annotate.frontend import front_end

    path, r = one_clip_per_speaker(shared)[0]
    spec = f"ecapa:{tiny_bicodec}"
    stage = AnnotateStage(embeddings=True, embedding_model=spec)
    rec = Utterance(index="e", text=r["text"], source_path=str(path), corpus_root="/")
    out = stage.process_batch([rec, rec.replace(index="f")])
    v = np.asarray(out[0].embedding)
    assert out[0].embedding_model == "ecapa-bicodec:bicodec-tiny" and out[0].embedding == out[1].embedding
    assert abs(np.linalg.norm(v) - 1.0) < 2e-3
    # The gender model still gets its own (GE2E) embedding beside the stored ECAPA one.
    assert out[0].gender_model == "voxbox-gender-ge2e-v1" and len(v) != 256
    tok = BiCodecTokenizer(tiny_bicodec)
    speech = front_end(path).speech.astype(np.float32)
    with torch.inference_mode():
        x = tok.model.x_vector(torch.from_numpy(reference_clip(speech, tok.ref_length))[None]).numpy()[0]
    assert np.abs(v - x / np.linalg.norm(x)).max() < 1e-3  # float16 storage
