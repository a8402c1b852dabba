"""`voxbox build --corpus libritts --subset dev-clean` without --root, end to end: the
corpus is downloaded from a real HTTP server on 127.0.0.1 (the catalog entry is
overridden through VOXBOX_CATALOG, the host through VOXBOX_MIRROR), extracted into
the VOXBOX_DATA cache, prepared by the real LibriTTS recipe, annotated by the real
default pipeline and written as validated shards. A rerun neither downloads nor
rebuilds; a catalog checksum that does not match stops the build before any shard."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxbox.cli import main
from voxbox.dataset.reader import open_dataset
from voxbox.dataset.validate import validate

from http_fixtures import Server, md5, tar_gz

SR = 24000
ARCHIVE_PATH = "/resources/60/dev-clean.tar.gz"
# (speaker, chapter, paragraph_sentence, seconds, f0 Hz, normalized text, original text)
UTTERANCES = [
    ("84", "121123", "000007_000001", 0.9, 210.0, "Hello world, said the reader.", "\"Hello world,\" said the reader."),
    ("84", "121123", "000008_000000", 0.7, 230.0, "It was the twenty first of May.", "It was the 21st of May."),
    ("174", "50561", "000010_000000", 0.8, 110.0, "Mister Brown walked home.", "Mr. Brown walked home."),
]
GENDERS = {"84": "female", "174": "male"}


def voiced_wav(seconds: float, f0: float, seed: int) -> bytes:
    """A 16-bit 24 kHz WAV like LibriTTS's: a harmonic tone with a slow vibrato, a
    little noise, and short silences at both ends."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * seconds)) / SR
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.03 * np.sin(2 * np.pi * 3 * t))) / SR
    y = sum(0.25 / k * np.sin(k * phase) for k in range(1, 5))
    env = np.clip(np.minimum(t - 0.1, seconds - 0.1 - t) / 0.05, 0, 1)
    y = y * env + 0.002 * rng.standard_normal(t.size)
    buf = io.BytesIO()
    sf.write(buf, y.astype("float32"), SR, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def libritts_archive() -> bytes:
    """dev-clean.tar.gz in the real layout: LibriTTS/speakers.tsv and
    LibriTTS/dev-clean/<spk>/<chapter>/ with .wav, .normalized.txt, .original.txt
    and the chapter's .trans.tsv / .book.tsv."""
    members = {
        "LibriTTS/README_libritts.txt": b"LibriTTS corpus (synthetic test copy)\n",
        "LibriTTS/speakers.tsv": b"READER\tGENDER\tSUBSET\tNAME\n84\tF\tdev-clean\tChristie Nowak\n"
                                 b"174\tM\tdev-clean\tPeter Eastman\n",
    }
    chapters = {}
    for i, (spk, chapter, ps, secs, f0, norm, orig) in enumerate(UTTERANCES):
        utt = f"{spk}_{chapter}_{ps}"
        folder = f"LibriTTS/dev-clean/{spk}/{chapter}"
        members[f"{folder}/{utt}.wav"] = voiced_wav(secs, f0, seed=i)
        members[f"{folder}/{utt}.normalized.txt"] = norm.encode()
        members[f"{folder}/{utt}.original.txt"] = orig.encode()
        chapters.setdefault((spk, chapter), []).append(f"{utt}\t{orig}\t{norm}\n")
    for (spk, chapter), rows in chapters.items():
        folder = f"LibriTTS/dev-clean/{spk}/{chapter}"
        members[f"{folder}/{spk}_{chapter}.trans.tsv"] = "".join(rows).encode()
        members[f"{folder}/{spk}_{chapter}.book.tsv"] = b""
    return tar_gz(members)


def write_catalog(folder: Path, checksum: str) -> Path:
    """A libritts entry that replaces the shipped one (same name, same URL path)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "libritts.yaml").write_text(f"""
name: libritts
title: LibriTTS (test copy)
languages: [en]
license: CC-BY-4.0
homepage: https://www.openslr.org/60/
sample_rate: 24000
audio_format: wav
archives:
  - {{subset: dev-clean, url: "https://www.openslr.org{ARCHIVE_PATH}", checksum: "{checksum}"}}
""")
    return folder


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def archive(server):
    data = libritts_archive()
    server.files[ARCHIVE_PATH] = data
    return data


def build_args(out: Path):
    return ["build", "--corpus", "libritts", "--subset", "dev-clean", "--out", str(out), "--workers", "1"]


def shard_files(out: Path):
    return sorted(p for d in ("webdataset", "parquet") if (out / d).is_dir() for p in (out / d).iterdir())


@pytest.mark.slow
def test_build_without_root_downloads_then_builds_and_reruns_without_work(server, archive, tmp_path,
                                                                          monkeypatch, capsys):
    cache = tmp_path / "cache"
    monkeypatch.setenv("VOXBOX_CATALOG", str(write_catalog(tmp_path / "catalog", md5(archive))))
    monkeypatch.setenv("VOXBOX_MIRROR", server.url)
    monkeypatch.setenv("VOXBOX_DATA", str(cache))
    out = tmp_path / "built"

    assert main(build_args(out)) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert server.requests == [(ARCHIVE_PATH, None)]
    # Downloaded, verified and extracted into $VOXBOX_DATA/libritts.
    dest = cache / "libritts"
    assert (dest / "archives" / "dev-clean.tar.gz").read_bytes() == archive
    assert (dest / ".voxbox" / "dev-clean.tar.gz.extracted").is_file()
    for spk, chapter, ps, *_ in UTTERANCES:
        assert (dest / "LibriTTS" / "dev-clean" / spk / chapter / f"{spk}_{chapter}_{ps}.wav").is_file()
    assert f"downloading libritts dev-clean into {dest}" in err
    assert "dev-clean.tar.gz: downloaded" in err and "md5 verified" in err

    report = validate(out)
    assert report.ok, report.problems
    ds = open_dataset(out)
    # provenance records the build's own command, not the host process's argv (pytest's)
    assert ds.provenance["command"] == ["voxbox", *build_args(out)]
    recs = sorted(ds.records(), key=lambda r: r.source_path)
    assert list(ds.rejects()) == []
    want = sorted(UTTERANCES, key=lambda u: f"{u[0]}_{u[1]}_{u[2]}")
    assert [r.source_path for r in recs] == [f"LibriTTS/dev-clean/{s}/{c}/{s}_{c}_{p}.wav" for s, c, p, *_ in want]
    assert [(r.speaker, r.gender, r.text) for r in recs] == [(s, GENDERS[s], norm) for s, _, _, _, _, norm, _ in want]
    assert all(r.corpus == "libritts" and r.sample_rate == SR and r.split == "dev" for r in recs)
    assert [r.num_samples for r in recs] == [int(SR * u[3]) for u in want]
    assert all(r.pitch and r.pitch > 0 and r.speed is not None for r in recs)  # the annotate stage ran
    index = json.loads((out / "index.json").read_text())
    assert index["totals"]["records"] == len(UTTERANCES)

    # The same command again: no request, no new shard, the same index.
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in shard_files(out)}
    assert before
    assert main(build_args(out)) == 0
    err = capsys.readouterr().err
    assert len(server.requests) == 1
    assert "dev-clean.tar.gz: already downloaded and extracted, skipped" in err
    assert "already finished and verified" in err
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in shard_files(out)} == before
    assert json.loads((out / "index.json").read_text()) == index


@pytest.mark.slow
def test_checksum_mismatch_stops_the_build_with_one_line_and_no_shards(server, archive, tmp_path,
                                                                       monkeypatch, capsys):
    cache = tmp_path / "cache"
    wrong = "md5:" + "0" * 32
    monkeypatch.setenv("VOXBOX_CATALOG", str(write_catalog(tmp_path / "catalog", wrong)))
    monkeypatch.setenv("VOXBOX_MIRROR", server.url)
    monkeypatch.setenv("VOXBOX_DATA", str(cache))
    out = tmp_path / "built"

    assert main(build_args(out)) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [f"error: checksum mismatch for dev-clean.tar.gz: expected md5 {'0' * 32}, got "
                      f"{md5(archive)[4:]}; the file was removed, rerun to download it again"]
    assert server.requests == [(ARCHIVE_PATH, None)]
    dest = cache / "libritts"
    assert not (dest / "archives" / "dev-clean.tar.gz").exists()
    assert not (dest / "archives" / "dev-clean.tar.gz.part").exists()
    assert not (dest / "LibriTTS").exists()
    # The download failed before the build started: the output folder was not touched.
    assert not out.exists()

    # With the right checksum the same command downloads again and builds.
    write_catalog(tmp_path / "catalog", md5(archive))
    assert main(build_args(out)) == 0
    assert server.requests == [(ARCHIVE_PATH, None)] * 2
    assert validate(out).ok and len(open_dataset(out)) == len(UTTERANCES)


def test_foreign_out_folder_is_refused_before_downloading(server, archive, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VOXBOX_CATALOG", str(write_catalog(tmp_path / "catalog", md5(archive))))
    monkeypatch.setenv("VOXBOX_MIRROR", server.url)
    monkeypatch.setenv("VOXBOX_DATA", str(tmp_path / "cache"))
    out = tmp_path / "not-ours"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    requests_before = len(server.requests)
    assert main(build_args(out)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a voxbox build" in err[0]
    assert len(server.requests) == requests_before == 0
    assert not (tmp_path / "cache").exists()
    assert (out / "thesis.tex").read_text() == "precious"
