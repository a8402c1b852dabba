"""Speaker consistency: clustering real clips into speakers, confidence-weighted speaker
votes in annotate, disagreeing speakers and checked native labels in report and card."""

from __future__ import annotations

import json

import numpy as np
import pytest

from voxbox.annotate.runner import annotate_manifest, annotate_records
from voxbox.cli import main
from voxbox.dataset.stats import DatasetStats
from voxbox.labels.speakers import GenderConsistency, SpeakerVote, cluster, vote
from voxbox.manifest import read_manifest, write_manifest
from voxbox.record import Utterance


def real(shared, keep_speaker=True, keep_gender=False):
    root = shared / "data" / "real-speech"
    out = []
    for line in (root / "manifest.jsonl").read_text().splitlines():
        r = json.loads(line)
        out.append(Utterance(index=r["path"].replace("/", "_").replace(".", "_"), text=r["text"], corpus="real",
                             speaker=r["speaker"] if keep_speaker else None, source_path=r["path"],
                             corpus_root=str(root), gender=r["gender"] if keep_gender else None,
                             gender_source="native" if keep_gender else None,
                             extra={"truth_speaker": r["speaker"], "truth_gender": r["gender"]}))
    return out


def ari(a, b):
    from sklearn.metrics import adjusted_rand_score

    return adjusted_rand_score(a, b)


def test_vote_is_confidence_weighted_and_deterministic():
    # Two unsure clips (0.55 + 0.52) outweigh one sure clip (0.99).
    v = vote([("male", 0.99), ("female", 0.55), ("female", 0.52)])
    assert v.label == "female" and v.confidence == round(1.07 / 2.06, 4) and v.disagree == 1
    assert v.counts == {"female": 2, "male": 1}
    assert vote([("male", 0.9), ("male", 0.8), ("female", 0.95)]).label == "male"
    assert vote([("male", 0.6), ("female", 0.6)]).label == "female"  # a tie: alphabetical
    assert vote([]) is None
    assert SpeakerVote("male", 0.6, clips=5, disagree=2).inconsistent
    assert not SpeakerVote("male", 0.9, clips=10, disagree=1).inconsistent
    assert not SpeakerVote("male", 0.9, clips=10, disagree=2).inconsistent  # 20% < 25%


@pytest.mark.slow
def test_clustering_recovers_the_real_speakers(shared):
    """GE2E embeddings of the 74 real clips (24 speakers, five corpora, 16-48 kHz):
    average-linkage clustering at the default threshold finds the speakers; blockwise
    clustering (for corpora too big to cluster at once) nearly as well."""
    from voxbox.annotate.frontend import front_end
    from voxbox.annotate.embeddings import GE2EEncoder

    recs = real(shared)
    E = GE2EEncoder().embed_batch([front_end(r.audio_path).speech for r in recs])
    truth = [r.speaker for r in recs]
    ids = cluster(E)
    assert ari(truth, ids) > 0.95 and 22 <= ids.max() + 1 <= 27
    assert list(ids[:1]) == [0] and set(ids) == set(range(ids.max() + 1))  # numbered by first appearance
    blocks = cluster(E, max_exact=30)
    assert ari(truth, blocks) > 0.9
    assert ari(truth, cluster(E, threshold=0.6)) < 0.7  # the threshold is what separates speakers
    assert np.array_equal(cluster(E), ids)  # deterministic


@pytest.mark.slow
def test_speakers_command_on_a_manifest_without_speaker_ids(tmp_path, shared, capsys):
    src = tmp_path / "nospk.jsonl"
    write_manifest(src, real(shared, keep_speaker=False))
    out = tmp_path / "spk.jsonl"
    assert main(["speakers", str(src), "--out", str(out)]) == 0
    assert "74 of 74 records clustered into predicted speakers" in capsys.readouterr().out
    got = list(read_manifest(out))
    assert all(r.speaker.startswith("spk") and r.speaker_source == "predicted" for r in got)
    assert ari([r.extra["truth_speaker"] for r in got], [r.speaker for r in got]) > 0.95
    assert all(len(r.embedding) == 256 and r.embedding_model == "ge2e-resemblyzer" for r in got)
    # A second run reuses the stored embeddings and gives the same ids.
    again = tmp_path / "spk2.jsonl"
    assert main(["speakers", str(out), "--out", str(again)]) == 0
    assert [r.speaker for r in read_manifest(again)] == [r.speaker for r in got]
    # Records that have a corpus speaker id are left alone unless --all.
    write_manifest(src, real(shared, keep_speaker=True)[:5])
    assert main(["speakers", str(src), "--out", str(out)]) == 0
    assert [r.speaker_source for r in read_manifest(out)] == [None] * 5
    assert main(["speakers", str(tmp_path), "--out", str(out)]) == 1
    assert "not a built dataset" in capsys.readouterr().err


@pytest.mark.slow
def test_gender_by_speaker_votes_and_reports_disagreeing_speakers(tmp_path, shared, capsys):
    """Clips get their speaker's vote; a 'speaker' that is really two people (3 clips of
    p226, male, and 2 of p225, female, under one id) is reported as inconsistent."""
    recs = real(shared)
    p226 = [r for r in recs if r.speaker == "p226"][:3]
    p225 = [r for r in recs if r.speaker == "p225"][:2]
    mixed = [r.replace(speaker="mixed") for r in p226 + p225]
    lj = [r for r in recs if r.speaker == "LJ"][:3]
    src = tmp_path / "in.jsonl"
    write_manifest(src, mixed + lj)
    out = tmp_path / "out.jsonl"
    assert main(["annotate", str(src), "--out", str(out), "--gender-by", "speaker"]) == 0
    printed = capsys.readouterr().out
    assert "2 speakers voted; 1 with clips that disagree strongly" in printed and "real/mixed: male" in printed
    got = {r.index: r for r in read_manifest(out)}
    for r in p226 + p225:
        g = got[r.index]
        assert g.gender == "male" and g.gender_model == "voxbox-gender-ge2e-v1 (speaker vote)"
        assert g.gender_clip == r.extra["truth_gender"]  # each clip's own answer is kept
    assert got[p225[0].index].pitch_level is not None  # levels follow the voted gender
    assert all(got[r.index].gender == "female" for r in lj)
    assert not list(tmp_path.glob("*.by-clip.jsonl"))  # the work file is gone
    # The same records through the report statistics and the card.
    stats = DatasetStats()
    for r in got.values():
        stats.add(r)
    s = stats.gender_consistency.summary()["vote"]
    assert s["speakers"] == 2 and s["flagged"][0]["speaker"] == "real/mixed" and s["flagged"][0]["rate"] == 0.4
    from voxbox.release.card import _consistency_lines
    from voxbox.release.report import _consistency_html

    assert "`real/mixed`" in "\n".join(_consistency_lines(stats.gender_consistency.summary()))
    assert "real/mixed" in _consistency_html(stats.gender_consistency.summary())


@pytest.mark.slow
def test_native_labels_are_checked_per_speaker(shared):
    """A corpus that lists a man as female: the model disagrees on every clip of that
    speaker, and the check names him."""
    recs = [r for r in real(shared, keep_gender=True) if r.speaker in ("p226", "p225", "LJ")]
    wrong = [r.replace(gender="female") if r.speaker == "p226" else r for r in recs]
    out = list(annotate_records(wrong))
    assert all(o.gender_source == "native" for o in out)
    check = GenderConsistency()
    for o in out:
        check.add(o)
    s = check.summary()["native"]
    assert s["speakers"] == 3
    assert [f["speaker"] for f in s["flagged"]] == ["real/p226"] and s["flagged"][0]["rate"] == 1.0
    n226 = sum(r.speaker == "p226" for r in recs)
    assert s["disagree"] == n226 and s["rate"] == round(n226 / len(recs), 4)


def test_gender_by_must_be_clip_or_speaker(tmp_path):
    src = tmp_path / "in.jsonl"
    write_manifest(src, [Utterance(index="a", source_path="a.wav", corpus_root=str(tmp_path))])
    assert main(["annotate", str(src), "--out", str(tmp_path / "o.jsonl"), "--gender-by", "corpus"]) == 1
    from voxbox.errors import VoxboxError

    with pytest.raises(VoxboxError, match="--gender-by must be clip or speaker"):
        annotate_manifest(src, tmp_path / "o.jsonl", gender_by="corpus")
