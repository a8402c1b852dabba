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


# ----------------------------------------------------------------------------------
# The on-disk implementation: same answers as the in-memory one, flat memory
# ----------------------------------------------------------------------------------
NEW_SETTINGS = ("lsh_bands", "lsh_rows", "max_bucket")


def _without_new_keys(report: dict) -> dict:
    """The report less what the on-disk version adds (band layout, cut buckets)."""
    out = {k: v for k, v in report.items() if k != "capped_buckets"}
    out["settings"] = {k: v for k, v in report["settings"].items() if k not in NEW_SETTINGS}
    return out


def test_banding_is_the_one_datasketch_chose():
    from datasketch import MinHashLSH

    from voxbox.labels.dedup import BANDS, NUM_PERM, ROWS

    lsh = MinHashLSH(threshold=0.5, num_perm=NUM_PERM)
    assert (lsh.b, lsh.r) == (BANDS, ROWS)


def test_on_disk_dedup_gives_the_in_memory_answers(tmp_path):
    """A synthetic corpus with planted exact copies, resampled copies with re-typed text,
    impostors, length mismatches and short texts: the same report as the in-memory
    datasketch implementation, whether the sorts spill many runs (merged in two levels)
    or none."""
    from dedup_corpus import write_corpus
    from dedup_inmemory import find_duplicates_in_memory

    from voxbox.labels.dedup import DedupConfig, find_duplicates

    paths = write_corpus(tmp_path, 1500, seed=3)
    old = find_duplicates_in_memory(paths)
    ev = [d["evidence"] for g in old["groups"] for d in g["duplicates"]]
    # The corpus exercises every path: exact copies, text+voice copies, refused candidates.
    assert ev.count("audio_hash") >= 15 and ev.count("text+embedding") >= 10
    assert old["text_candidates"] > ev.count("text+embedding") and old["unreadable"]["no_audio_path"] >= 10
    spilled = find_duplicates(paths, DedupConfig(run_items=200, work_dir=str(tmp_path / "work")))
    assert spilled["capped_buckets"] == {"buckets": 0, "records": 0}
    assert spilled["settings"]["lsh_bands"] == 25 and spilled["settings"]["lsh_rows"] == 5
    assert _without_new_keys(spilled) == old
    assert not any((tmp_path / "work").iterdir())  # the work files are removed
    assert _without_new_keys(find_duplicates(paths)) == old  # one in-memory run per sort


def _crowd(tmp_path, n=40):
    """``n`` records with the same words and length, no audio; the first two share a voice."""
    from dedup_corpus import MODEL

    from voxbox.manifest import ManifestWriter
    from voxbox.record import Utterance

    rng = np.random.default_rng(7)
    voices = rng.standard_normal((n, 16))
    voices[1] = voices[0]
    path = tmp_path / "crowd.jsonl"
    with ManifestWriter(path) as w:
        for i in range(n):
            w.write(Utterance(index=make_index("crowd", f"u{i:03d}"), corpus="crowd", duration=2.0,
                              text="thank you very much indeed", embedding=[float(x) for x in voices[i]],
                              embedding_model=MODEL))
    return path


def test_a_crowded_bucket_is_cut_and_counted(tmp_path, capsys):
    """40 records share every band key: with --max-bucket 10 only the first 10 are paired
    (45 candidates, not 780) and the report counts the 25 cut buckets; the same-voice
    pair among them is still found. Uncut, the answers are the in-memory ones."""
    from dedup_inmemory import find_duplicates_in_memory

    from voxbox.labels.dedup import DedupConfig, find_duplicates

    path, out = _crowd(tmp_path), tmp_path / "r.json"
    assert main(["dedup", str(path), "--out", str(out), "--max-bucket", "10", "--work-dir",
                 str(tmp_path / "w")]) == 0
    assert "25 LSH buckets over --max-bucket 10: 750 records in them not compared there" in capsys.readouterr().out
    report = load_report(out)
    assert report["capped_buckets"] == {"buckets": 25, "records": 750} and report["text_candidates"] == 45
    assert [g["members"] for g in report["groups"]] == [[make_index("crowd", "u000"), make_index("crowd", "u001")]]
    full = find_duplicates([path], DedupConfig(run_items=100))
    assert full["text_candidates"] == 780 and full["capped_buckets"]["buckets"] == 0
    assert _without_new_keys(full) == find_duplicates_in_memory([path])


# Linux keeps ru_maxrss across exec, so a child forked from a big pytest process would
# report the parent's size; VmHWM belongs to the new address space alone.
_PEAK = """
import json, re, resource, sys
from pathlib import Path
from voxbox.labels.dedup import DedupConfig, find_duplicates
r = find_duplicates(sys.argv[2:], DedupConfig(run_items=int(sys.argv[1])))
status = Path("/proc/self/status")
hwm = re.search(r"VmHWM:\\s*(\\d+)", status.read_text()) if status.exists() else None
peak = int(hwm.group(1)) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rss_kib": peak, "records": r["records"], "duplicates": r["duplicates"]}))
"""


@pytest.mark.slow
def test_memory_stays_flat_for_ten_times_the_records(tmp_path):
    """Peak RSS of a fresh process for 2,000 vs 20,000 base records (ten times the
    records, the duplicates and the candidates) stays within 25%: the records go to disk;
    what is held is the sort's bounded buffers and the duplicates' records."""
    import subprocess
    import sys

    from dedup_corpus import write_corpus

    peaks = []
    for n in (2000, 20000):
        folder = tmp_path / str(n)
        folder.mkdir()
        paths = write_corpus(folder, n, seed=5)
        # 500 items a run: both sizes sort into more than the 64 runs merged at once, so
        # both hold the sort's ceiling (one run + 64 read buffers of 1 MiB).
        proc = subprocess.run([sys.executable, "-c", _PEAK, "500", *map(str, paths)], capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        peaks.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    small, big = peaks
    assert big["records"] > 9 * small["records"] and big["duplicates"] > 8 * small["duplicates"]
    assert big["rss_kib"] <= 1.25 * small["rss_kib"], peaks


def test_stored_embeddings_need_no_model(tmp_path):
    """Records carrying embeddings of the chosen backend are compared without loading it;
    the name it is matched by is the loaded encoder's own."""
    from voxbox.labels.inputs import Embedder, records_with_audio

    emb = Embedder("ge2e")
    for pos, (rec, load) in enumerate(records_with_audio(_crowd(tmp_path, 3))):
        emb.add(pos, rec, load)
    emb.flush()
    assert emb._encoder is None and all(emb.get(p) is not None for p in range(3))
    assert emb.encoder.name == emb.name


def test_an_unusable_work_folder_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["dedup", str(_crowd(tmp_path, 3)), "--out", str(tmp_path / "r.json"), "--work-dir",
                 str(tmp_path / "file" / "sub")]) == 1
    assert "work folder" in capsys.readouterr().err and not (tmp_path / "r.json").exists()
