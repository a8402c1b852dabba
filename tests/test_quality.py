"""DNSMOS (P.835 + P.808, offline ONNX from speechmos) and the filter stage (issue 13,
capability 4)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from corpus_fixtures import Clips, write
from voxbox.errors import VoxboxError
from voxbox.record import Rejection, Utterance


def _clip_record(clips, i, **kw):
    p = clips.path(i)
    return Utterance(index=f"t_{i}", source_path=p.name, corpus_root=str(p.parent), **kw)


@pytest.mark.slow
def test_dnsmos_equals_the_speechmos_reference(shared):
    pytest.importorskip("onnxruntime")
    ref = pytest.importorskip("speechmos.dnsmos")  # the packaged reference implementation
    from voxbox.annotate.dnsmos import DNSMOS

    model = DNSMOS()
    clips = Clips(shared)
    for i in (0, len(clips.rows) - 1):  # a short clip (repeated to 9 s) and the longest one
        x, sr = sf.read(str(clips.path(i)), dtype="float32")
        mine, theirs = model.score(x.astype(np.float64)), ref.run(x, sr)
        for k in ("sig", "bak", "ovrl", "p808"):
            assert mine[k] == pytest.approx(float(theirs[f"{k}_mos"]), abs=1e-4), k


@pytest.mark.slow
def test_dnsmos_stage_fills_the_fields_and_reads_spans(shared):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("speechmos")
    from voxbox.annotate.dnsmos import DNSMOS, DNSMOSStage

    clips = Clips(shared)
    rec = _clip_record(clips, 3)
    out = DNSMOSStage().process(rec)
    x, _ = sf.read(str(clips.path(3)))
    want = DNSMOS().score(x)
    assert (out.dnsmos_sig, out.dnsmos_bak, out.dnsmos_ovrl, out.dnsmos_p808) == tuple(
        round(want[k], 2) for k in ("sig", "bak", "ovrl", "p808"))
    # A span: the first half of the clip, scored on exactly those samples.
    half = x.shape[0] // 2
    span = DNSMOSStage().process(rec.replace(span_offset=0.0, span_duration=half / 16000))
    assert span.dnsmos_ovrl == round(DNSMOS().score(x[:half])["ovrl"], 2)
    missing = DNSMOSStage().process(rec.replace(source_path="nope.wav"))
    assert isinstance(missing, Rejection) and missing.reason == "missing_audio"


def test_filter_rules_presets_and_native_scores():
    from voxbox.filtering import PRESETS, FilterStage

    assert {k: v["dnsmos_p808_min"] for k, v in PRESETS.items() if k.startswith("wenet")} == {
        "wenetspeech4tts_basic": 3.6, "wenetspeech4tts_standard": 3.8, "wenetspeech4tts_premium": 4.0}
    premium = FilterStage(preset="wenetspeech4tts_premium")
    native = Utterance(index="a", source_path="a.wav", extra={"dnsmos_p808": 3.9})
    res = premium.process(native)
    assert isinstance(res, Rejection) and res.reason == "filtered"
    assert res.detail == "dnsmos_p808_min 4: 3.9 (native extra.dnsmos_p808)"
    # A computed score wins over the corpus's own.
    assert premium.process(native.replace(dnsmos_p808=4.2)) == native.replace(dnsmos_p808=4.2)
    assert "no value" in premium.process(Utterance(index="b", source_path="b.wav")).detail
    emilia = FilterStage(preset="emilia")
    assert emilia.process(Utterance(index="c", source_path="c.wav", extra={"dnsmos": 3.4})).index == "c"
    rules = FilterStage(duration_min=1.0, duration_max=20, clipping_max=0.01, speed_max=10, languages=["zh", "en"])
    ok = Utterance(index="d", source_path="d.wav", duration=3.0, clipping_ratio=0.0, speed=4.0, language="en")
    assert rules.process(ok) == ok
    for change, detail in ((dict(duration=0.5), "duration_min 1: 0.5"), (dict(duration=25.0), "duration_max 20: 25"),
                           (dict(clipping_ratio=0.2), "clipping_max 0.01: 0.2"), (dict(speed=12.0), "speed_max 10: 12"),
                           (dict(language="ja"), "languages en,zh: ja")):
        assert rules.process(ok.replace(**change)).detail == detail
    with pytest.raises(VoxboxError, match="has no option 'dnsmos_min'"):
        FilterStage(dnsmos_min=3)
    with pytest.raises(VoxboxError, match="unknown preset"):
        FilterStage(preset="nope")


def test_filter_stage_from_pipeline_yaml_sends_filtered_records_to_rejects(tmp_path, shared, monkeypatch):
    """A WenetSpeech4TTS fixture built with the Premium preset: records under P.808 4.0
    land in rejects.jsonl as `filtered`, naming the rule; nothing disappears."""
    from test_corpora_voxbox import REPO
    from voxbox.build.run import build, load_pipeline
    from voxbox.dataset import open_dataset
    from voxbox.sources.corpora import get_recipe

    monkeypatch.setenv("VOXBOX_CATALOG", str(REPO / "manifests"))
    clips = Clips(shared)
    folder = tmp_path / "c" / "Basic" / "WenetSpeech4TTS_Basic_0"
    scores = {"X1": 4.3, "X2": 3.7, "X3": 4.0}
    for k, uid in enumerate(scores):
        clips.put(folder / "wavs" / f"{uid}.wav", k)
        write(folder / "txts" / f"{uid}.txt", f"{uid}\t文本{k}\n")
    write(tmp_path / "c" / "DNSMOS_P808Scores" / "Basic_DNSMOS.lst",
          "".join(f"{u}.wav {s}\n" for u, s in scores.items()))
    yaml = tmp_path / "pipe.yaml"
    write(yaml, "name: w\nstages:\n  - stage: filter\n    params: {preset: wenetspeech4tts_premium}\n"
                "output: {formats: [parquet]}\n")
    out = tmp_path / "out"
    build(get_recipe("wenetspeech4tts").prepare(tmp_path / "c"), out, load_pipeline(yaml), workers=1)
    ds = open_dataset(out)
    assert sorted(r.extra["tier"] + r.source_path[-6:] for r in ds.records()) == ["BasicX1.wav", "BasicX3.wav"]
    (rej,) = list(ds.rejects())
    assert (rej.stage, rej.reason, rej.detail) == ("filter", "filtered", "dnsmos_p808_min 4: 3.7 (native extra.dnsmos_p808)")
    assert json.loads((out / "index.json").read_text())["rejects"]["by_reason"] == {"filter: filtered": 1}
