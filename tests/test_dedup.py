"""voxbox dedup: duplicates planted across two corpora built from the shared clips are
found (an exact copy by its audio hash, a re-encoded, re-trimmed copy with re-typed
text by text + voice + length), 13 speakers reading the same sentence are not, and
`build --dedup` sends the copies to the rejects."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from voxbox.cli import main
from voxbox.dataset import open_dataset
from voxbox.labels.dedup import duplicate_map, load_report, normalise_text
from voxbox.manifest import read_manifest
from voxbox.record import make_index

LT = "libritts-mini/LibriTTS/test-clean"
EXACT = "5142/33396/5142_33396_000002_000004"
REENC = "6829/68771/6829_68771_000027_000000"
SAME_SENTENCE = ("p233", "p243")


@pytest.fixture(scope="module")
def corpora(tmp_path_factory, shared):
    """Two built folders: A = the LibriTTS mini tree; B = a folder corpus with two planted
    copies of A's clips, two VCTK speakers reading one sentence, an impostor (another voice
    with a copy's words and length) and one LJSpeech clip."""
    tmp = tmp_path_factory.mktemp("dedup")
    rs = shared / "data" / "real-speech"
    b = tmp / "B"
    (b / "copies").mkdir(parents=True)
    shutil.copy(rs / LT / f"{EXACT}.wav", b / "copies" / "exact.wav")
    (b / "copies" / "exact.txt").write_text((rs / LT / f"{EXACT}.normalized.txt").read_text())
    # Re-encoded: 24 kHz WAV -> 16 kHz FLAC, 50 ms trimmed off the start, text re-typed.
    x, sr = sf.read(rs / LT / f"{REENC}.wav")
    import soxr

    y = soxr.resample(x, sr, 16000)[800:]
    sf.write(b / "copies" / "reenc.flac", y, 16000)
    text = (rs / LT / f"{REENC}.normalized.txt").read_text()
    (b / "copies" / "reenc.txt").write_text(text.upper().replace(",", "").replace(".", " !"))
    rows = {json.loads(ln)["path"]: json.loads(ln) for ln in (rs / "manifest.jsonl").read_text().splitlines()}
    (b / "vctk").mkdir()
    for spk in SAME_SENTENCE:
        shutil.copy(rs / "audio/vctk" / f"{spk}_023.wav", b / "vctk" / f"{spk}_023.wav")
        (b / "vctk" / f"{spk}_023.txt").write_text(rows[f"audio/vctk/{spk}_023.wav"]["text"])
    # An impostor: another speaker cut to the same length and given the same words.
    z, zsr = sf.read(rs / "audio/vctk/p230_023.wav")
    sf.write(b / "vctk" / "impostor.wav", z[:int(len(x) / sr * zsr)], zsr)
    (b / "vctk" / "impostor.txt").write_text(text)
    (b / "lj").mkdir()
    shutil.copy(rs / "audio/ljspeech/LJ001-0001.wav", b / "lj" / "LJ001-0001.wav")
    (b / "lj" / "LJ001-0001.txt").write_text(rows["audio/ljspeech/LJ001-0001.wav"]["text"])
    a_out, b_out = tmp / "built-A", tmp / "built-B"
    assert main(["build", "--corpus", "libritts", "--root", str(rs / "libritts-mini/LibriTTS"), "--out",
                 str(a_out), "--stages", "", "--workers", "1"]) == 0
    assert main(["build", "--corpus", "folder", "--root", str(b), "--out", str(b_out), "--stages", "",
                 "--workers", "1"]) == 0
    return tmp, b, a_out, b_out


def a_index(name):
    return make_index("libritts", f"test-clean/{name}.wav")


def test_normalised_text_ignores_case_punctuation_and_spacing():
    assert normalise_text("The girl entered, and gave an involuntary cry of surprise.") == \
        normalise_text("THE GIRL ENTERED AND GAVE  AN INVOLUNTARY CRY OF SURPRISE !")
    assert normalise_text("阿伊。") == "阿伊"


def test_planted_duplicates_across_two_corpora_are_found(corpora, capsys):
    tmp, _b, a_out, b_out = corpora
    report_path, merged = tmp / "report.json", tmp / "all.jsonl"
    assert main(["dedup", str(a_out), str(b_out), "--out", str(report_path), "--manifest-out", str(merged)]) == 0
    assert "2 duplicates in 2 groups among 12 records (folder / libritts: 2)" in capsys.readouterr().out
    report = load_report(report_path)
    groups = {g["keep"]: g for g in report["groups"]}
    # The LibriTTS copy is kept (libritts comes before unlisted corpora in the priority).
    exact = groups[a_index(EXACT)]["duplicates"]
    assert [(d["index"], d["evidence"]) for d in exact] == [(make_index("folder", "copies/exact.wav"), "audio_hash")]
    reenc = groups[a_index(REENC)]["duplicates"][0]
    assert reenc["index"] == make_index("folder", "copies/reenc.flac") and reenc["evidence"] == "text+embedding"
    assert reenc["cosine"] > 0.95 and reenc["jaccard"] >= 0.8 and reenc["duration_diff"] < 0.5
    # Same words, another voice: proposed by the text index, refused by the voice check.
    listed = {i for g in report["groups"] for i in g["members"]}
    assert make_index("folder", "vctk/impostor.wav") not in listed
    assert not any(make_index("folder", f"vctk/{s}_023.wav") in listed for s in SAME_SENTENCE)
    assert report["text_candidates"] >= 3  # reenc-A, impostor-A, impostor-reenc
    # duplicate_of on every record of both inputs.
    marks = {r.index: r.duplicate_of for r in read_manifest(merged)}
    assert len(marks) == 12 and sum(v is not None for v in marks.values()) == 2
    assert marks[make_index("folder", "copies/reenc.flac")] == a_index(REENC)
    # Another priority keeps the other copy.
    flipped = duplicate_map(report, ["folder", "libritts"])
    assert flipped[a_index(EXACT)][0] == make_index("folder", "copies/exact.wav")


def test_build_dedup_sends_copies_to_rejects(corpora, capsys):
    tmp, b, _a_out, _b_out = corpora
    report = tmp / "report.json"
    if not report.exists():
        assert main(["dedup", str(corpora[2]), str(corpora[3]), "--out", str(report)]) == 0
    out = tmp / "built-B-dedup"
    assert main(["build", "--corpus", "folder", "--root", str(b), "--out", str(out), "--stages", "",
                 "--workers", "1", "--dedup", str(report)]) == 0
    ds = open_dataset(out)
    assert len(ds) == 4  # 6 in B, less the two copies
    dups = [r for r in ds.rejects() if r.reason == "duplicate"]
    assert sorted(r.index for r in dups) == sorted([make_index("folder", "copies/exact.wav"),
                                                    make_index("folder", "copies/reenc.flac")])
    assert all(r.stage == "dedup" and r.detail.startswith("duplicate of libritts_") for r in dups)
    assert ds.index["rejects"]["by_reason"] == {"dedup: duplicate": 2}
    capsys.readouterr()
    assert main(["build", "--corpus", "folder", "--root", str(b), "--out", str(tmp / "x"),
                 "--dedup-priority", "folder"]) == 1
    assert "--dedup-priority needs --dedup" in capsys.readouterr().err


def test_bad_inputs_are_clear_errors(tmp_path, corpora, capsys):
    assert main(["dedup", str(tmp_path), "--out", str(tmp_path / "r.json")]) == 1
    assert "not a built dataset" in capsys.readouterr().err
    _tmp, _b, a_out, _ = corpora
    assert main(["dedup", str(a_out), str(a_out), "--out", str(tmp_path / "r.json")]) == 1
    assert "the same records were given twice" in capsys.readouterr().err
    (tmp_path / "r.json").write_text("{}")
    assert main(["build", "--corpus", "folder", "--root", str(tmp_path), "--out", str(tmp_path / "o"),
                 "--dedup", str(tmp_path / "r.json")]) == 1
    assert "not a voxbox dedup report" in capsys.readouterr().err
    np.testing.assert_equal(len(list(a_out.glob("webdataset/*.tar"))), 1)


@pytest.mark.slow
def test_speakers_reads_a_built_folder(corpora, tmp_path, capsys):
    """`voxbox speakers DIR` takes the audio from a built folder's shards; the different
    voices of corpus B stay apart."""
    _tmp, _b, _a_out, b_out = corpora
    out = tmp_path / "spk.jsonl"
    assert main(["speakers", str(b_out), "--out", str(out), "--all"]) == 0
    assert "6 of 6 records clustered" in capsys.readouterr().out
    by = {r.source_path: r.speaker for r in read_manifest(out)}
    assert len(set(by.values())) >= 5  # six clips, five or six voices (p233/p243 may not merge)
    assert by["copies/exact.wav"] != by["copies/reenc.flac"]  # 5142 and 6829 are different readers
    assert by["vctk/impostor.wav"] != by["copies/reenc.flac"]
