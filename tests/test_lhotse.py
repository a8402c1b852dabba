"""lhotse both ways, with real lhotse objects: `voxbox export lhotse` (Shar and JSONL manifests
that lhotse loads and decodes) and lhotse manifests as a voxbox source (a real lhotse recipe's
output through `voxbox prepare lhotse` and `voxbox build --manifest`)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from voxbox.cli import main
from voxbox.dataset import open_dataset
from voxbox.errors import VoxboxError
from voxbox.manifest import read_manifest
from voxbox.record import Rejection, Utterance
from voxbox.sources.corpora import get_recipe
from voxbox.sources.sample_corpus import ROOT as SAMPLE_ROOT

lhotse = pytest.importorskip("lhotse")
from lhotse import CutSet, RecordingSet, SupervisionSet  # noqa: E402


@pytest.fixture(scope="module")
def ljspeech(tmp_path_factory, shared) -> dict:
    """lhotse's own LJSpeech recipe run on the 8 real LJSpeech clips (a temporary tree of links)."""
    from lhotse.recipes import prepare_ljspeech

    real = shared / "data" / "real-speech"
    corpus = tmp_path_factory.mktemp("lj") / "LJSpeech-1.1"
    (corpus / "wavs").mkdir(parents=True)
    for wav in sorted((real / "audio" / "ljspeech").glob("*.wav")):
        (corpus / "wavs" / wav.name).symlink_to(wav)
    (corpus / "metadata.csv").write_text((real / "meta" / "ljspeech" / "metadata.csv").read_text())
    manifests = prepare_ljspeech(corpus, output_dir=corpus.parent / "manifests")
    # lhotse's supervision text is the raw transcript (column 2; the normalized one goes to custom).
    texts = {line.split("|")[0]: line.split("|")[1] for line in (corpus / "metadata.csv").read_text().splitlines()}
    return {"dir": corpus.parent / "manifests", "texts": texts, **manifests}


# ------------------------------------------------------------------------------- export

@pytest.mark.parametrize("fmt", ["shar", "jsonl"])
@pytest.mark.slow
def test_export_loads_in_lhotse_with_decodable_audio_and_voxbox_fields(sample, tmp_path, fmt, capsys):
    out = tmp_path / fmt
    assert main(["export", "lhotse", str(sample), "-o", str(out), "-f", fmt]) == 0
    assert "6 cuts" in capsys.readouterr().out
    cuts = (CutSet.from_shar(in_dir=out / "test") if fmt == "shar"
            else CutSet.from_file(out / "test" / "cuts.jsonl.gz"))
    recs = {r.index: r for r in open_dataset(sample).records()}
    n = 0
    for cut in cuts:
        rec = recs[cut.id]
        (sup,) = cut.supervisions
        assert (sup.text, sup.speaker, sup.gender, sup.language) == (rec.text, rec.speaker, rec.gender, "en")
        assert sup.custom["utt_id"] == rec.utt_id and sup.custom["pitch"] == rec.pitch
        assert sup.custom["speed_level"] == rec.speed_level and sup.custom["split"] == "test"
        assert sup.custom["null_reasons"]["semantic_tokens"] == "not_tokenized"
        audio = cut.load_audio()
        assert cut.sampling_rate == 24000 and audio.shape == (1, rec.num_samples)
        src = sf.read(str(SAMPLE_ROOT / rec.source_path), dtype="float32")[0]
        np.testing.assert_allclose(audio[0], src, atol=1e-6)
        n += 1
    assert n == 6
    if fmt == "jsonl":  # the three manifests agree with the cuts
        assert len(RecordingSet.from_file(out / "test" / "recordings.jsonl.gz")) == 6
        assert len(SupervisionSet.from_file(out / "test" / "supervisions.jsonl.gz")) == 6


def test_export_carries_tokens_per_split_deterministically(tiny, tmp_path):
    from voxbox.dataset.lhotse import export_lhotse

    summary = export_lhotse(tiny, tmp_path / "a")
    assert {k: v["cuts"] for k, v in summary["splits"].items()} == {"train": 11, "test": 1}
    recs = {r.index: r for r in open_dataset(tiny).records()}
    for split in ("train", "test"):
        for cut in CutSet.from_shar(in_dir=tmp_path / "a" / split):
            custom = cut.supervisions[0].custom
            assert custom["global_tokens"] == recs[cut.id].global_tokens
            assert custom["semantic_tokens"] == recs[cut.id].semantic_tokens
            assert recs[cut.id].split == split
    export_lhotse(tiny, tmp_path / "b")
    for p in sorted((tmp_path / "a").rglob("*")):
        if p.is_file() and p.name != "summary.json":  # the summary names its own folder
            assert p.read_bytes() == (tmp_path / "b" / p.relative_to(tmp_path / "a")).read_bytes(), p
    with pytest.raises(VoxboxError, match="--force"):
        export_lhotse(tiny, tmp_path / "a")
    export_lhotse(tiny, tmp_path / "a", split="test", force=True)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["summary.json", "test"]


# ------------------------------------------------------------------------------- import

@pytest.mark.slow
def test_a_real_lhotse_recipe_builds_with_voxbox(ljspeech, tmp_path, monkeypatch):
    cuts = CutSet.from_manifests(recordings=ljspeech["recordings"], supervisions=ljspeech["supervisions"])
    cuts.to_file(tmp_path / "cuts.jsonl.gz")
    monkeypatch.chdir(tmp_path)  # lhotse resolves relative paths against the working folder
    out = tmp_path / "built"
    assert main(["build", "--manifest", str(tmp_path / "cuts.jsonl.gz"), "--out", str(out), "--stages", "",
                 "-O", "corpus=ljspeech", "-O", "license=Public-Domain", "-j", "1", "-q"]) == 0
    recs = list(open_dataset(out).records())
    assert len(recs) == 8
    for r in recs:
        assert r.text == ljspeech["texts"][r.utt_id] and r.utt_id.startswith("LJ001-")
        assert (r.corpus, r.gender, r.language, r.license) == ("ljspeech", "female", "en", "Public-Domain")
        assert r.num_samples == sf.info(str(ljspeech["recordings"][r.utt_id].sources[0].source)).frames
    # Recordings + supervisions manifests through prepare give the same records.
    manifest = tmp_path / "lj.jsonl"
    rec_file = next(ljspeech["dir"].glob("*recordings*"))
    sup_file = next(ljspeech["dir"].glob("*supervisions*"))
    assert main(["prepare", "lhotse", "-o", str(manifest), "-O", f"recordings={rec_file}",
                 "-O", f"supervisions={sup_file}", "-O", "corpus=ljspeech"]) == 0
    prepared = {r.utt_id: r for r in read_manifest(manifest)}
    assert {r.utt_id: r.index for r in recs} == {k: r.index for k, r in prepared.items()}


def test_segments_odd_sources_and_missing_text_are_rejected_with_reasons(ljspeech, tmp_path):
    from lhotse import Recording
    from lhotse.audio import AudioSource

    recs = list(ljspeech["recordings"])
    sups = list(ljspeech["supervisions"])
    part = sups[0].with_offset(0.5)  # half a second into the recording
    part = type(part)(**{**part.to_dict(), "id": "part", "duration": 1.0})
    url = Recording(id="remote", sources=[AudioSource("url", [0], "https://example.org/a.wav")],
                    sampling_rate=22050, num_samples=22050, duration=1.0)
    url_sup = type(sups[1])(**{**sups[1].to_dict(), "id": "remote-sup", "recording_id": "remote", "duration": 1.0})
    silent = type(sups[2])(**{**sups[2].to_dict(), "id": "silent", "text": " "})
    out = list(get_recipe("lhotse", recordings=RecordingSet.from_recordings(recs + [url]),
                          supervisions=SupervisionSet.from_segments([part, url_sup, silent, *sups[3:5]]))
               .prepare(tmp_path))
    rejected = {r.reason for r in out if isinstance(r, Rejection)}
    good = [r for r in out if isinstance(r, Utterance)]
    assert rejected == {"segment_not_supported", "unsupported_audio_source", "missing_transcript"}
    assert sorted(r.utt_id for r in good) == [sups[3].id, sups[4].id]
    no_sup = [r.path for r in out if isinstance(r, Rejection) and "without a supervision" in (r.detail or "")]
    assert no_sup == [recs[i].id for i in (1, 5, 6, 7)]  # never silently dropped


def test_export_then_import_round_trip(sample, tmp_path):
    from voxbox.dataset.lhotse import export_lhotse

    export_lhotse(sample, tmp_path / "lh", fmt="jsonl")
    cuts = CutSet.from_file(tmp_path / "lh" / "test" / "cuts.jsonl.gz")
    out = list(get_recipe("lhotse", cuts=cuts).prepare(tmp_path))
    assert not [r for r in out if isinstance(r, Rejection)]
    back = [r for r in out if isinstance(r, Utterance)]
    before = {r.utt_id: r for r in open_dataset(sample).records()}
    assert len(back) == 6
    for r in back:
        old = before[r.utt_id]
        assert (r.corpus, r.split, r.text, r.speaker, r.gender, r.pitch) == \
            (old.corpus, "test", old.text, old.speaker, old.gender, old.pitch)
        assert r.num_samples == old.num_samples and r.extra["lhotse_supervision_id"] == old.index
