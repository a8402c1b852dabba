"""The tokenize stage, `voxbox tokenize` (resume, rejects, throughput) and `voxbox detokenize`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from spark_tokenize import BiCodecTokenizer
from voxbox.cli import main
from voxbox.errors import VoxboxError
from voxbox.record import Rejection, Utterance, make_index
from voxbox.manifest import read_manifest, read_rejects, rejects_path, write_manifest
from voxbox.stages import make_stage
from voxbox.build.manifest_run import work_dir
from voxbox.tokenize.stage import TokenizeStage, tokenize_manifest

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tok(tiny_bicodec):
    return BiCodecTokenizer(tiny_bicodec)


def _expected(tiny, case):
    d = tiny / "cases" / case
    g = json.loads((d / "global_tokens.json").read_text())["tokens"]
    s = json.loads((d / "semantic_tokens.json").read_text())["tokens"]
    return np.asarray(g).reshape(-1).tolist(), np.asarray(s).reshape(-1).tolist()


def _rec(root, rel, corpus="fx"):
    return Utterance(index=make_index(corpus, rel), corpus=corpus, source_path=rel, corpus_root=str(root))


@pytest.fixture()
def manifest(tmp_path, tiny_bicodec):
    bad = tmp_path / "bad"
    bad.mkdir()
    sf.write(bad / "silence.wav", np.zeros(16000), 16000, subtype="PCM_16")
    sf.write(bad / "short.wav", np.full(300, 0.3), 16000, subtype="PCM_16")
    cases = tiny_bicodec / "cases"
    recs = [
        _rec(cases, "B/B_cmu_arctic_16k_2p8s.wav"),
        _rec(bad, "silence.wav"),
        _rec(cases, "E/E_stereo_44k1.wav"),
        _rec(bad, "missing.wav"),
        _rec(bad, "short.wav"),
        _rec(cases, "A/A_libritts_24k_3s.wav"),
    ]
    path = tmp_path / "in.jsonl"
    write_manifest(path, recs)
    return path


def _stage(tok, cls=TokenizeStage, **kw):
    st = cls(model_dir=str(tok.model_dir), batch_size=2, **kw)
    st.tokenizer, st._ready = tok, True  # share the loaded model across tests
    return st


@pytest.mark.slow
def test_stage_fills_tokens_and_rejects(tok, manifest, tiny_bicodec):
    st = _stage(tok)
    assert isinstance(make_stage("tokenize", model_dir="x"), TokenizeStage)
    recs = list(read_manifest(manifest))
    res = st.safe_process_batch(recs)
    eg, es = _expected(tiny_bicodec, "B")
    assert res[0].global_tokens == eg
    assert len(res[0].semantic_tokens) == 140
    assert sum(a != b for a, b in zip(res[0].semantic_tokens, es)) <= 1  # frame 41: listed near-tie
    assert res[2].global_tokens == _expected(tiny_bicodec, "E")[0]
    assert res[2].semantic_tokens == _expected(tiny_bicodec, "E")[1]
    reasons = {r.path: r.reason for r in res if isinstance(r, Rejection)}
    assert reasons == {"silence.wav": "silent_audio", "missing.wav": "missing_audio",
                       "short.wav": "audio_too_short"}
    assert all(r.stage == "tokenize" for r in res if isinstance(r, Rejection))
    # Pickles as its parameters only; a fresh copy has no model until setup.
    import pickle

    clone = pickle.loads(pickle.dumps(st))
    assert clone.params == st.params and clone.tokenizer is None


def test_stage_needs_a_model_dir():
    with pytest.raises(VoxboxError, match="needs model_dir"):
        TokenizeStage().setup()


class _Interrupt(TokenizeStage):
    calls = 0

    def process_batch(self, recs):
        type(self).calls += 1
        if type(self).calls == 3:
            raise KeyboardInterrupt
        return super().process_batch(recs)


class _Counting(TokenizeStage):
    seen: list = []

    def process_batch(self, recs):
        type(self).seen.extend(r.source_path for r in recs)
        return super().process_batch(recs)


def _journal_kinds(out):
    return [json.loads(line)["kind"] for line in (work_dir(out) / "journal.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_resume_after_interruption(tok, manifest, tmp_path, tiny_bicodec):
    out = tmp_path / "out.jsonl.gz"
    with pytest.raises(KeyboardInterrupt):
        tokenize_manifest(manifest, out, tok.model_dir, batch_size=1, chunk_batches=1, part_records=1,
                          stage=_stage(tok, _Interrupt))
    assert not out.exists()
    assert _journal_kinds(out) == ["start", "shard", "shard"]  # two finished one-record parts
    with open(work_dir(out) / "journal.jsonl", "a") as fh:
        fh.write('{"kind": "shard", "shard": 2, "rec')  # an interruption mid-write
    s = tokenize_manifest(manifest, out, tok.model_dir, batch_size=1, chunk_batches=1, part_records=1,
                          stage=_stage(tok, _Counting))
    assert _Counting.seen == ["E/E_stereo_44k1.wav", "missing.wav", "short.wav", "A/A_libritts_24k_3s.wav"]
    assert s["resumed_from"] == 2 and s["records"] == 3 and s["rejected"] == 3
    assert not work_dir(out).exists()
    recs = list(read_manifest(out))
    assert [r.source_path for r in recs] == ["B/B_cmu_arctic_16k_2p8s.wav", "E/E_stereo_44k1.wav",
                                             "A/A_libritts_24k_3s.wav"]
    assert recs[2].global_tokens == _expected(tiny_bicodec, "A")[0]
    rej = list(read_rejects(rejects_path(out)))
    assert [r.reason for r in rej] == ["silent_audio", "missing_audio", "audio_too_short"]


def test_unfinished_run_of_other_options_is_refused(tok, manifest, tmp_path):
    out = tmp_path / "out.jsonl"
    _Interrupt.calls = 0
    with pytest.raises(KeyboardInterrupt):
        tokenize_manifest(manifest, out, tok.model_dir, batch_size=1, chunk_batches=1, part_records=1,
                          stage=_stage(tok, _Interrupt))
    with pytest.raises(VoxboxError, match="holds an unfinished run with other input or options"):
        tokenize_manifest(manifest, out, tok.model_dir, part_records=1, stage=_stage(tok, dtype="bfloat16"))
    assert _journal_kinds(out) == ["start", "shard", "shard"]  # the finished work is kept


@pytest.mark.slow
def test_cli_tokenize_and_detokenize(manifest, tmp_path, tiny_bicodec, tok, capsys):
    out = tmp_path / "tok.parquet"
    rc = main(["tokenize", str(manifest), "--model-dir", str(tiny_bicodec), "--out", str(out),
               "--batch-size", "4"])
    assert rc == 0
    msg = capsys.readouterr().out
    assert "tokenized 3 records" in msg and "audio-s/s" in msg and "3 rejected" in msg
    recs = list(read_manifest(out))
    assert recs[1].global_tokens == _expected(tiny_bicodec, "E")[0]
    assert len(list(read_rejects(rejects_path(out)))) == 3

    wav_path = tmp_path / "rec.wav"
    assert main(["detokenize", str(out), "--index", recs[1].index, "--model-dir", str(tiny_bicodec),
                 "--out", str(wav_path)]) == 0
    wav, sr = sf.read(wav_path)
    want = tok.detokenize(recs[1].global_tokens, recs[1].semantic_tokens)
    assert sr == 16000 and wav.shape == want.shape == (320 * 256,)
    assert np.abs(wav - want).max() < 1e-4  # 16-bit PCM

    tokens = tmp_path / "t.json"
    eg, es = _expected(tiny_bicodec, "B")
    tokens.write_text(json.dumps({"global_tokens": eg, "semantic_tokens": es}))
    assert main(["detokenize", str(tokens), "--model-dir", str(tiny_bicodec), "--out", str(tmp_path / "b.wav")]) == 0
    ref = np.load(tiny_bicodec / "cases" / "B" / "wav_rec.npy")
    assert np.abs(sf.read(tmp_path / "b.wav")[0] - ref).max() < 1e-4


def test_cli_errors_are_one_line(tmp_path, tiny_bicodec, manifest, capsys):
    assert main(["tokenize", str(manifest), "--model-dir", str(tmp_path / "nomodel"),
                 "--out", str(tmp_path / "o.jsonl")]) == 1
    assert "model folder not found" in capsys.readouterr().err
    # The failed run left no progress journal, so the corrected command is not refused.
    assert list(tmp_path.glob("o.jsonl*")) == []
    (tmp_path / "file").write_text("x")
    assert main(["tokenize", str(manifest), "--model-dir", str(tmp_path / "file"),
                 "--out", str(tmp_path / "o.jsonl")]) == 1
    assert "is a file, not a model folder" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"global_tokens": [1] * 31, "semantic_tokens": [1, 2]}))
    assert main(["detokenize", str(bad), "--model-dir", str(tiny_bicodec), "--out", str(tmp_path / "x.wav")]) == 1
    assert "global_tokens must hold 32 values" in capsys.readouterr().err
    assert main(["detokenize", str(manifest), "--index", "nope", "--model-dir", str(tiny_bicodec),
                 "--out", str(tmp_path / "x.wav")]) == 1
    assert "no record with index nope" in capsys.readouterr().err
    assert main(["detokenize", str(manifest), "--index", "0", "--model-dir", str(tiny_bicodec),
                 "--out", str(tmp_path / "x.wav")]) == 1
    assert "has no tokens" in capsys.readouterr().err
    # An --out that cannot be written is refused before tokenizing, not at the very end.
    (tmp_path / "dir.jsonl").mkdir()
    assert main(["tokenize", str(manifest), "--model-dir", str(tmp_path / "nomodel"),
                 "--out", str(tmp_path / "dir.jsonl")]) == 1
    assert "is a folder; give a manifest file name" in capsys.readouterr().err
    (tmp_path / "d.jsonl").mkdir()
    assert main(["detokenize", str(tmp_path / "d.jsonl"), "--model-dir", str(tiny_bicodec),
                 "--out", str(tmp_path / "x.wav")]) == 1
    assert "is a folder; give a token JSON file" in capsys.readouterr().err
    # A manifest without --index, and outputs that cannot hold the wav: told before decoding.
    assert main(["detokenize", str(manifest), "--model-dir", str(tiny_bicodec), "--out", str(tmp_path / "x.wav")]) == 1
    assert "is a manifest; pick a record with --index" in capsys.readouterr().err
    for out, msg in ((tmp_path / "x.mp3", "write .wav or .flac"), (tmp_path / "d.wav", "is a folder")):
        (tmp_path / "d.wav").mkdir(exist_ok=True)
        assert main(["detokenize", str(bad), "--model-dir", str(tiny_bicodec), "--out", str(out)]) == 1
        assert msg in capsys.readouterr().err


def test_default_batch_size_batches_on_gpu_only():
    from voxbox.tokenize.stage import TokenizeStage, default_batch_size

    assert default_batch_size("cpu") == 1 and default_batch_size("cuda:1") == 16
    assert TokenizeStage(model_dir="x").params["batch_size"] == 1
    assert TokenizeStage(model_dir="x", device="cuda").params["batch_size"] == 16
    assert TokenizeStage(model_dir="x", batch_size=4).params["batch_size"] == 4


@pytest.mark.slow
def test_all_records_rejected_is_an_error_and_a_fixed_rerun_redoes_them(tok, tmp_path):
    bad = tmp_path / "audio"
    bad.mkdir()
    src = tmp_path / "in.jsonl"
    write_manifest(src, [_rec(bad, "a.wav"), _rec(bad, "b.wav")])
    out = tmp_path / "out.jsonl"
    with pytest.raises(VoxboxError, match="every record was rejected.*2 tokenize: missing_audio"):
        tokenize_manifest(src, out, tok.model_dir, stage=_stage(tok))
    assert not out.exists() and not work_dir(out).exists()
    assert len(list(read_rejects(rejects_path(out)))) == 2
    for name in ("a.wav", "b.wav"):  # the user restores the audio and reruns
        sf.write(bad / name, 0.3 * np.sin(np.arange(24000) / 8.0), 16000, subtype="PCM_16")
    s = tokenize_manifest(src, out, tok.model_dir, stage=_stage(tok))
    assert s["records"] == 2 and s["rejected"] == 0
    assert all(len(r.global_tokens) == 32 for r in read_manifest(out))
