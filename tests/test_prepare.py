"""Bad input never crashes prepare and is never silently dropped; the folder recipe;
the `voxbox prepare` and `voxbox corpora` commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxbox.cli import main
from voxbox.sources.corpora import get_recipe
from voxbox.sources.prepare import prepare_manifest
from voxbox.errors import VoxboxError
from voxbox.record import Rejection, Utterance
from voxbox.manifest import read_manifest, read_rejects, rejects_path


def tone(path: Path, sr: int = 16000, n: int = 800, fmt: str | None = None, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    x = 0.1 * np.sin(np.arange(n) * (2 * np.pi * (300 + seed) / sr)).astype("float32")
    sf.write(str(path), x, sr, format=fmt, subtype="PCM_16")


def write(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))


def bad_libritts(root: Path) -> Path:
    ch = root / "LibriTTS" / "train-clean-100" / "19" / "198"
    good = ["19_198_000000_000000", "19_198_000000_000001"]
    for i, u in enumerate(good):
        tone(ch / f"{u}.wav", 24000, seed=i)
        write(ch / f"{u}.normalized.txt", f"Good sentence {i}.")
    # truncated: header promises more samples than the file holds
    tone(ch / "19_198_000001_000000.wav", 24000, n=4000)
    data = (ch / "19_198_000001_000000.wav").read_bytes()
    write(ch / "19_198_000001_000000.wav", data[: len(data) // 2])
    write(ch / "19_198_000001_000000.normalized.txt", "Truncated.")
    write(ch / "19_198_000002_000000.wav", b"")                              # zero-length
    write(ch / "19_198_000002_000000.normalized.txt", "Empty.")
    write(ch / "19_198_000003_000000.wav", b"RIFF....WAVEjunkjunkjunkjunk")   # not decodable
    write(ch / "19_198_000003_000000.normalized.txt", "Garbage.")
    tone(ch / "19_198_000004_000000.wav", 24000, seed=4)                      # no transcript
    tone(ch / "19_198_000005_000000.wav", 24000, seed=5)
    write(ch / "19_198_000005_000000.normalized.txt", "caf\xe9".encode("latin-1"))  # not UTF-8
    tone(ch / "19_198_000006_000000.wav", 24000, seed=6)
    write(ch / "19_198_000006_000000.normalized.txt", "  \n")                  # empty transcript
    write(ch / "notes.docx", b"PK\x03\x04")                                   # not part of the layout
    write(ch / "19_198_000099_000000.normalized.txt", "Orphan text.")          # transcript without audio
    return root


EXPECTED = {
    "19_198_000001_000000.wav": "truncated_audio",
    "19_198_000002_000000.wav": "empty_file",
    "19_198_000003_000000.wav": "unreadable_audio",
    "19_198_000004_000000.wav": "missing_transcript",
    "19_198_000005_000000.wav": "text_not_utf8",
    "19_198_000006_000000.wav": "empty_transcript",
    "notes.docx": "unexplained_file",
    "19_198_000099_000000.normalized.txt": "unexplained_file",
}


def test_every_bad_file_is_rejected_with_its_reason(tmp_path):
    root = bad_libritts(tmp_path / "corpus")
    out = tmp_path / "out" / "m.jsonl"
    summary = prepare_manifest("libritts", root, out)
    recs = list(read_manifest(out))
    rejects = list(read_rejects(rejects_path(out)))
    assert sorted(Path(r.source_path).name for r in recs) == ["19_198_000000_000000.wav", "19_198_000000_000001.wav"]
    got = {Path(r.path).name: r.reason for r in rejects}
    assert got == EXPECTED
    assert all(r.stage == "prepare" and r.path.startswith("LibriTTS/train-clean-100/19/198/") for r in rejects)
    # every file in the tree is accounted for: a record, a rejection, or a sidecar of a record
    files = {p.name for p in (root / "LibriTTS").rglob("*") if p.is_file()}
    sidecars = {Path(r.source_path).name[:-4] + ".normalized.txt" for r in recs}
    assert files == {Path(r.source_path).name for r in recs} | set(got) | sidecars | {
        f[:-4] + ".normalized.txt" for f in got if f.endswith(".wav") and (root / "LibriTTS" / "train-clean-100" / "19" / "198" / (f[:-4] + ".normalized.txt")).exists()}
    assert summary.records == 2 and summary.rejected == len(EXPECTED)
    line = summary.line()
    assert f"{len(EXPECTED)} rejected" in line and "2 unexplained_file" in line and str(rejects_path(out)) in line


def test_truncated_flac_is_found_from_the_tail(tmp_path):
    ch = tmp_path / "LibriSpeech" / "dev-clean" / "1" / "2"
    tone(ch / "1-2-0000.flac", 16000, n=16000, fmt="FLAC")
    tone(ch / "1-2-0001.flac", 16000, n=16000, fmt="FLAC", seed=1)
    data = (ch / "1-2-0001.flac").read_bytes()
    write(ch / "1-2-0001.flac", data[: len(data) // 2])
    write(ch / "1-2.trans.txt", "1-2-0000 HELLO\n1-2-0001 WORLD\n")
    out = list(get_recipe("librispeech").prepare(tmp_path))
    assert [type(x).__name__ for x in out] == ["Utterance", "Rejection"]
    assert out[1].reason == "truncated_audio"


def test_duplicate_ids_in_metadata_are_rejected(tmp_path):
    tone(tmp_path / "a.wav")
    tone(tmp_path / "b.wav", seed=1)
    write(tmp_path / "meta.csv", "path,text\na.wav,first\nb.wav,second\na.wav,again\n")
    out = list(get_recipe("folder", metadata="meta.csv").prepare(tmp_path))
    recs = [x for x in out if isinstance(x, Utterance)]
    rejs = [x for x in out if isinstance(x, Rejection)]
    assert [r.text for r in recs] == ["first", "second"]
    assert [(r.path, r.reason) for r in rejs] == [("a.wav", "duplicate_id")]


# ------------------------------------------------------------------------------ folder

def test_folder_sidecars(tmp_path):
    tone(tmp_path / "alice" / "001.wav")
    write(tmp_path / "alice" / "001.txt", "Hello from Alice.\n")
    tone(tmp_path / "alice" / "002.flac", fmt="FLAC", seed=1)
    write(tmp_path / "alice" / "002.txt", "Second clip.")
    tone(tmp_path / "bob" / "003.wav", seed=2)        # no sidecar
    write(tmp_path / "README.md", "my recordings")
    out = list(get_recipe("folder", language="en", license="CC0-1.0").prepare(tmp_path))
    recs = {x.source_path: x for x in out if isinstance(x, Utterance)}
    rejs = {x.path: x.reason for x in out if isinstance(x, Rejection)}
    assert set(recs) == {"alice/001.wav", "alice/002.flac"}
    r = recs["alice/001.wav"]
    assert (r.speaker, r.text, r.language, r.license, r.emotion, r.corpus) == \
        ("alice", "Hello from Alice.", "en", "CC0-1.0", None, "folder")
    assert r.utt_id == "alice/001" and recs["alice/002.flac"].utt_id == "alice/002"  # unique in the folder
    assert rejs == {"bob/003.wav": "missing_transcript", "README.md": "unexplained_file"}


def test_folder_csv_tsv_jsonl_with_mapped_columns(tmp_path):
    for i in range(3):
        tone(tmp_path / "clips" / f"c{i}.wav", 22050, seed=i)
    write(tmp_path / "meta.tsv", "file\tsentence\twho\tsex\tyears\tmood\n"
                                 "clips/c0.wav\tZero.\tspk1\tF\t34\thappy\n"
                                 "clips/c1.wav\tOne.\tspk2\tmale\t65\tangry\n"
                                 "clips/c2.wav\t\tspk2\tM\t65\tneutral\n")
    opts = dict(metadata="meta.tsv", path_column="file", text_column="sentence", speaker_column="who",
                gender_column="sex", age_column="years", emotion_column="mood")
    out = list(get_recipe("folder", **opts).prepare(tmp_path))
    recs = {x.source_path: x for x in out if isinstance(x, Utterance)}
    rejs = [(x.path, x.reason) for x in out if isinstance(x, Rejection)]
    a, b = recs["clips/c0.wav"], recs["clips/c1.wav"]
    assert (a.speaker, a.gender, a.age, a.emotion, a.text) == ("spk1", "female", "Youth-Adult", "HAPPY", "Zero.")
    assert (b.gender, b.age, b.emotion, b.gender_source, b.age_source) == ("male", "Elderly", "ANGRY", "native", "native")
    assert a.utt_id == "clips/c0"
    ided = [x for x in get_recipe("folder", id_column="who", **opts).prepare(tmp_path) if isinstance(x, Utterance)]
    assert sorted(r.utt_id for r in ided) == ["spk1", "spk2"]  # your own id column
    assert rejs == [("clips/c2.wav", "missing_transcript")]

    write(tmp_path / "meta.jsonl", json.dumps({"audio": "clips/c0.wav", "transcript": "J zero."}) + "\n"
                                   + "{not json\n" + json.dumps({"audio": "clips/missing.wav", "transcript": "Gone."}) + "\n")
    out = list(get_recipe("folder", metadata="meta.jsonl", path_column="audio", text_column="transcript").prepare(tmp_path))
    recs = [x for x in out if isinstance(x, Utterance)]
    rejs = sorted((x.path, x.reason) for x in out if isinstance(x, Rejection))
    assert [r.text for r in recs] == ["J zero."]
    assert rejs == [("clips/c1.wav", "unexplained_file"), ("clips/c2.wav", "unexplained_file"),
                    ("clips/missing.wav", "missing_audio"), ("meta.jsonl:2", "bad_metadata"),
                    ("meta.tsv", "unexplained_file")]


def test_folder_bad_options_are_one_line_errors(tmp_path):
    write(tmp_path / "meta.csv", "file,text\na.wav,x\n")
    with pytest.raises(VoxboxError, match="no column 'path'"):
        list(get_recipe("folder", metadata="meta.csv").prepare(tmp_path))
    # Any misspelt column option, not only the path: once every row became missing_transcript.
    with pytest.raises(VoxboxError, match="no column 'sentence'.*set -o text_column=NAME"):
        list(get_recipe("folder", metadata="meta.csv", path_column="file", text_column="sentence").prepare(tmp_path))
    with pytest.raises(VoxboxError, match="set -o gender_column=NAME"):
        list(get_recipe("folder", metadata="meta.csv", path_column="file", gender_column="sex").prepare(tmp_path))
    write(tmp_path / "latin.csv", "path,text\na.wav,caf\xe9\n".encode("latin-1"))
    with pytest.raises(VoxboxError, match="not UTF-8"):
        list(get_recipe("folder", metadata="latin.csv").prepare(tmp_path))
    with pytest.raises(VoxboxError, match="not a folder"):
        list(get_recipe("folder").prepare(tmp_path / "nope"))


# --------------------------------------------------------------------------------- CLI

def test_cli_prepare_writes_manifest_rejects_and_summary(tmp_path, capsys):
    root = bad_libritts(tmp_path / "corpus")
    out = tmp_path / "m.jsonl.gz"
    assert main(["prepare", "libritts", "--root", str(root), "--out", str(out), "-j", "2"]) == 0
    line = capsys.readouterr().out
    assert "2 records" in line and f"{len(EXPECTED)} rejected" in line
    assert len(list(read_manifest(out))) == 2
    assert len(list(read_rejects(tmp_path / "m.rejects.jsonl"))) == len(EXPECTED)


def test_cli_prepare_options_and_errors(tmp_path, capsys):
    tone(tmp_path / "a.wav")
    write(tmp_path / "m.csv", "wav,words\na.wav,Hi there.\n")
    out = tmp_path / "folder.jsonl"
    assert main(["prepare", "folder", "--root", str(tmp_path), "-o", str(out),
                 "-O", "metadata=m.csv", "-O", "path_column=wav", "--option", "text-column=words"]) == 0
    assert [r.text for r in read_manifest(out)] == ["Hi there."]
    capsys.readouterr()
    assert main(["prepare", "vctk", "--root", str(tmp_path), "--out", str(out), "-O", "mic"]) == 1
    assert "KEY=VALUE" in capsys.readouterr().err
    # -o is --out in every command: an old `-o KEY=VALUE` habit is caught, not made a file name.
    assert main(["prepare", "folder", "--root", str(tmp_path), "-o", "language=en"]) == 1
    assert "looks like a recipe option" in capsys.readouterr().err and not (tmp_path / "language=en").exists()
    assert main(["prepare", "libritts", "--root", str(tmp_path), "--out", str(out), "-s", "dev-clean"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: libritts: subset dev-clean not found") and "Traceback" not in err


def test_rejection_index_matches_the_record_index_it_would_have_had(tmp_path):
    from voxbox.record import make_index

    root = bad_libritts(tmp_path / "corpus")
    out = [x for x in get_recipe("libritts").prepare(root) if isinstance(x, Rejection)]
    for r in out:
        if r.reason != "unexplained_file":
            assert r.index == make_index("libritts", r.path)
            assert r.path.startswith("LibriTTS/")


def test_folder_metadata_paths_cannot_leave_the_root(tmp_path):
    root = tmp_path / "mine"
    tone(root / "a.wav")
    tone(tmp_path / "secret.wav", seed=1)
    write(root / "m.csv", "path,text\n./a.wav,Fine.\n../secret.wav,Escape.\n/etc/passwd,Abs.\n")
    out = list(get_recipe("folder", metadata="m.csv").prepare(root))
    assert [x.source_path for x in out if isinstance(x, Utterance)] == ["a.wav"]
    assert sorted((x.path, x.reason) for x in out if isinstance(x, Rejection)) == [
        ("m.csv:3", "bad_metadata"), ("m.csv:4", "bad_metadata")]


def test_manifest_written_inside_the_root_is_not_part_of_the_corpus(tmp_path):
    tone(tmp_path / "a.wav")
    write(tmp_path / "a.txt", "Inside.")
    for _ in range(2):  # the second run sees the first run's manifest in the root
        s = prepare_manifest("folder", tmp_path, tmp_path / "m.jsonl")
        assert (s.records, s.rejected) == (1, 0), s.line()


def test_no_usable_recording_is_an_error_not_an_empty_manifest(tmp_path):
    # e.g. the wrong --root or recipe: it used to write an empty manifest and exit 0.
    tone(tmp_path / "a.wav")  # no transcript
    out = tmp_path / "m.jsonl"
    with pytest.raises(VoxboxError, match=r"folder: no usable recordings under .*1 rejected: 1 missing_transcript"):
        prepare_manifest("folder", tmp_path, out)
    assert not out.exists() and not out.with_name("m.jsonl.partial").exists()
    assert [r.reason for r in read_rejects(rejects_path(out))] == ["missing_transcript"]


def test_help_names_the_rejects_file_prepare_really_writes(tmp_path, capsys):
    # The help said <out>.rejects.jsonl; the file is <stem>.rejects.jsonl.
    import re

    assert main(["prepare", "--help"]) == 0
    text = " ".join(re.sub(r"[│\s]+", " ", capsys.readouterr().out).split())
    assert "<out>.rejects.jsonl" not in text and "<stem>.rejects.jsonl" in text
    example = re.search(r"\((\S+) -> (\S+?)\)", text)
    assert example and rejects_path(tmp_path / example.group(1)).name == example.group(2)
