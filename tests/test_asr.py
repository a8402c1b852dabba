"""The ASR plug-in of the annotate stage (issue 13, capability 5): `--asr-model`.

The model is a tiny random Whisper made at test time (tests/asr_fixtures.py; nothing is
downloaded). Its transcripts are nonsense, so the tests check the plumbing honestly:
each record's hypothesis equals what the transformers pipeline gives when called
directly on the same audio, WER/CER equal jiwer's on the normalised strings, runs are
deterministic, records without text get the hypothesis as their text, and the filter
stage rejects by wer_max.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from asr_fixtures import make_tiny_whisper
from corpus_fixtures import Clips
from voxbox.record import Rejection, Utterance

N_TEXT, N_BARE = 3, 2


@pytest.fixture(scope="module")
def whisper(tmp_path_factory):
    return make_tiny_whisper(tmp_path_factory.mktemp("asr") / "tiny-whisper")


def _records(shared):
    """Real 16 kHz clips: N_TEXT with their transcripts, N_BARE without text."""
    clips = Clips(shared)
    out = []
    for i in range(N_TEXT + N_BARE):
        path = clips.path(i)
        out.append(Utterance(index=f"t_{i:04d}", corpus="t", source_path=path.relative_to(clips.root).as_posix(),
                             corpus_root=str(clips.root), text=clips.text(i) if i < N_TEXT else None,
                             utt_id=path.stem))
    return out


def _direct(whisper, recs, batch_size):
    """The transformers pipeline called directly on each record's front-end audio."""
    from transformers import pipeline

    from voxbox.annotate.frontend import front_end

    pipe = pipeline("automatic-speech-recognition", model=str(whisper), device="cpu")
    inputs = [{"raw": front_end(r).audio.astype(np.float32), "sampling_rate": 16000} for r in recs]
    return [" ".join(o["text"].split()) for o in pipe(inputs, batch_size=batch_size)]


def test_normalize_and_error_rates():
    import jiwer

    from voxbox.annotate.asr import error_rates, normalize

    assert normalize("  Hello, World!  It's  well-known…") == "hello world its well known"
    assert normalize("你好，世界。") == "你好世界"
    wer, cer = error_rates("The cat sat.", "the cat sat on")
    assert wer == round(jiwer.wer("the cat sat", "the cat sat on"), 4) == 0.3333
    assert cer == round(jiwer.cer("thecatsat", "thecatsaton"), 4)
    assert error_rates("你好世界", "你好") == (1.0, 0.5)  # one "word" for WER; CER is the useful rate
    assert error_rates("...", "anything") == (None, None)
    assert error_rates("some words", "") == (1.0, 1.0)


def test_annotate_fills_and_checks_text_as_the_pipeline_does(whisper, shared):
    import jiwer

    from voxbox.annotate.asr import normalize
    from voxbox.annotate.stage import AnnotateStage

    recs = _records(shared)
    stage = AnnotateStage(asr_model=str(whisper), asr_batch_size=2, gender_model="none")
    got = stage.process_batch(recs)
    assert all(isinstance(r, Utterance) for r in got)
    hyps = _direct(whisper, recs, batch_size=2)
    assert len(set(hyps)) > 1  # the random model does hear different clips differently
    for rec, out, hyp in zip(recs, got, hyps):
        assert out.asr_model == str(whisper) and out.asr_text == (hyp or None)
        if rec.text is None:
            assert out.text == hyp and out.text_source == "asr"
            assert out.asr_wer is None and out.null_reasons["asr_wer"] == "text_from_asr"
            assert out.syllable_num is not None or out.null_reasons.get("syllable_num")
        else:
            ref, h = normalize(rec.text), normalize(hyp)
            assert out.text == rec.text and out.text_source is None
            assert out.asr_wer == round(jiwer.wer(ref, h), 4)
            assert out.asr_cer == round(jiwer.cer(ref.replace(" ", ""), h.replace(" ", "")), 4)
    # Deterministic: a fresh stage (a fresh model load) gives the same records.
    again = AnnotateStage(asr_model=str(whisper), asr_batch_size=2, gender_model="none").process_batch(recs)
    assert [r.to_dict() for r in again] == [r.to_dict() for r in got]


def test_clips_longer_than_the_window_go_one_at_a_time(whisper, shared, tmp_path):
    """Whisper's window is 30 s: a longer clip in a batch of short ones is transcribed on
    its own (the pipeline cannot pad them together) and gets the single-call hypothesis."""
    import soundfile as sf
    from transformers import pipeline

    from voxbox.annotate.asr import Transcriber

    clips = Clips(shared)
    long_clip = np.concatenate([sf.read(str(clips.path(i)), dtype="float32")[0] for i in range(len(clips.rows))])
    long_clip = long_clip[:16000 * 35]
    short = sf.read(str(clips.path(0)), dtype="float32")[0]
    got = Transcriber(str(whisper), batch_size=4).transcribe([short, long_clip, short], sr=16000)
    pipe = pipeline("automatic-speech-recognition", model=str(whisper), device="cpu")
    assert got[1] == " ".join(pipe({"raw": long_clip, "sampling_rate": 16000})["text"].split())
    shorts = pipe([{"raw": short, "sampling_rate": 16000}, {"raw": short, "sampling_rate": 16000}], batch_size=2)
    assert [got[0], got[2]] == [" ".join(o["text"].split()) for o in shorts]


def test_without_asr_model_the_fields_are_explained_nulls(shared):
    from voxbox.annotate.stage import AnnotateStage
    from voxbox.shards.finalize import shard_record

    rec = AnnotateStage(gender_model="none").process_batch(_records(shared)[:1])[0]
    stored = shard_record(rec, "flac")
    assert stored.asr_wer is None and stored.null_reasons["asr_wer"] == "no_asr_model"
    assert stored.null_reasons["text_source"] == "corpus_text"
    bare = shard_record(_records(shared)[-1], "flac")
    assert bare.null_reasons["asr_text"] == "not_annotated" and bare.null_reasons["text_source"] == "not_in_source"


def test_filter_wer_max_rules():
    from voxbox.filtering import FilterStage

    stage = FilterStage(wer_max=0.2, cer_max=0.1)
    base = Utterance(index="x", text="a b", asr_model="m", asr_text="a b")
    assert stage.process(base.replace(asr_wer=0.1, asr_cer=0.05)).index == "x"
    bad = stage.process(base.replace(asr_wer=0.5, asr_cer=0.05))
    assert isinstance(bad, Rejection) and bad.reason == "filtered" and bad.detail.startswith("wer_max 0.2: 0.5")
    bad = stage.process(base.replace(asr_wer=0.1, asr_cer=0.3))
    assert isinstance(bad, Rejection) and bad.detail.startswith("cer_max 0.1: 0.3")
    assert "no value" in stage.process(base).detail  # text, but never checked
    # Text the ASR wrote has nothing to differ from: not checked.
    assert isinstance(stage.process(base.replace(text_source="asr")), Utterance)


def test_a_corrected_text_is_no_longer_asr_text():
    from voxbox.build.corrections import apply

    rec = Utterance(index="x", text="heard this", text_source="asr", asr_model="m", asr_text="heard this",
                    null_reasons={"asr_wer": "text_from_asr", "asr_cer": "text_from_asr"})
    out = apply(rec, {"text": {"new": "said this", "who": "ann", "when": "T"}})
    assert out.text == "said this" and out.text_source is None and out.asr_text == "heard this"
    assert out.null_reasons["asr_wer"] == out.null_reasons["asr_cer"] == "label_corrected"


def _voxbox(*args, cwd):
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "voxbox", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)


@pytest.mark.slow
def test_cli_annotate_then_build_with_a_wer_filter(whisper, shared, tmp_path):
    """`voxbox annotate --asr-model`, then a build whose pipeline filters by wer_max:
    given texts whose WER is above the limit become `filtered` rejects, ASR texts stay."""
    from voxbox.dataset import open_dataset
    from voxbox.manifest import read_manifest, write_manifest

    recs = _records(shared)
    # One given transcript says exactly what the model hears: WER 0, kept by the filter.
    recs[0] = recs[0].replace(text=_direct(whisper, recs[:1], batch_size=1)[0])
    assert recs[0].text
    write_manifest(tmp_path / "m.jsonl", recs)
    a = _voxbox("annotate", str(tmp_path / "m.jsonl"), "-o", str(tmp_path / "a.jsonl"), "--asr-model", str(whisper),
                "--gender-model", "none", "--json", cwd=tmp_path)
    assert a.returncode == 0, a.stderr
    annotated = list(read_manifest(tmp_path / "a.jsonl"))
    assert sum(r.text_source == "asr" for r in annotated) == N_BARE
    limit = 0.9
    over = {r.index for r in annotated if r.asr_wer is not None and r.asr_wer > limit}
    assert annotated[0].asr_wer == 0.0 and len(over) == N_TEXT - 1
    (tmp_path / "p.yaml").write_text(json.dumps({"name": "asr", "stages": [
        {"stage": "filter", "params": {"wer_max": limit}}]}))
    b = _voxbox("build", "--manifest", str(tmp_path / "a.jsonl"), "--pipeline", str(tmp_path / "p.yaml"),
                "-o", str(tmp_path / "out"), cwd=tmp_path)
    assert b.returncode == 0, b.stderr
    ds = open_dataset(tmp_path / "out")
    kept = {r.index: r for r in ds.records("parquet")}
    rejected = {r.index: r for r in ds.rejects()}
    assert set(rejected) == over and set(kept) | over == {r.index for r in annotated}
    assert kept[annotated[0].index].asr_wer == 0.0 and kept[annotated[0].index].null_reasons.get("asr_wer") is None
    assert all(r.reason == "filtered" and r.detail.startswith(f"wer_max {limit:g}") for r in rejected.values())
    assert {k for k, r in kept.items() if r.text_source == "asr"} == {r.index for r in annotated if r.text is None
                                                                        or r.text_source == "asr"}


def test_bad_asr_model_is_a_one_line_error(tmp_path, shared):
    from voxbox.manifest import write_manifest

    write_manifest(tmp_path / "m.jsonl", _records(shared)[:1])
    p = _voxbox("annotate", str(tmp_path / "m.jsonl"), "-o", str(tmp_path / "a.jsonl"), "--asr-model",
                str(tmp_path / "no-such-model"), cwd=tmp_path)
    assert p.returncode == 1 and p.stderr.strip().startswith("error: cannot load asr_model")
    assert len(p.stderr.strip().splitlines()) == 1


def test_vad_segments_get_asr_text(whisper, shared, tmp_path):
    """prepare folder --segment vad, then annotate with asr_model: every segment has text."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("silero_vad")
    from test_vad import CLIPS, make_long_recording

    from voxbox.annotate.stage import AnnotateStage
    from voxbox.sources.corpora import get_recipe

    make_long_recording(shared, tmp_path / "rec" / "talk.wav", CLIPS[:2])
    recs = [r for r in get_recipe("folder", segment="vad", vad_min_silence="1").prepare(tmp_path / "rec", workers=1)]
    assert len(recs) == 2 and all(isinstance(r, Utterance) and r.text is None for r in recs)
    out = AnnotateStage(asr_model=str(whisper), gender_model="none").process_batch(recs)
    assert [r.text for r in out] == _direct(whisper, recs, batch_size=2)
    assert all(r.text_source == "asr" and r.text for r in out)
