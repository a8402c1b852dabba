"""Downloads against a real HTTP server on 127.0.0.1 (stdlib, with Range support):
resume after an interrupted transfer, checksum mismatch, 404, unsafe archives, the
`voxbox download` command with a mirror and a test catalog."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import zipfile
from pathlib import Path

import pytest

from voxbox.sources.catalog import Archive, CorpusEntry, apply_mirror
from voxbox.cli import main
from voxbox.sources.download import download_corpus, fetch, safe_extract
from voxbox.errors import VoxboxError

from http_fixtures import Server, md5, tar_gz

NO_SLEEP = lambda s: None  # noqa: E731


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def payload(n: int = 300_000) -> bytes:
    return bytes((i * 7919 + i // 256) % 251 for i in range(n))


def test_interrupted_transfer_resumes_with_range(server, tmp_path):
    data = payload()
    server.files["/res/60/a.tar.gz"] = data
    server.drop["/res/60/a.tar.gz"] = 100_000
    res = fetch(server.url + "/res/60/a.tar.gz", tmp_path / "a.tar.gz", checksum=md5(data), sleep=NO_SLEEP)
    assert (tmp_path / "a.tar.gz").read_bytes() == data
    assert server.requests == [("/res/60/a.tar.gz", None), ("/res/60/a.tar.gz", "bytes=100000-")]
    assert res.checksum == md5(data) and not (tmp_path / "a.tar.gz.part").exists()
    assert json.loads((tmp_path / "a.tar.gz.downloaded").read_text())["size"] == len(data)
    # a rerun finds the completed file and does not touch the network
    again = fetch(server.url + "/res/60/a.tar.gz", tmp_path / "a.tar.gz", checksum=md5(data), sleep=NO_SLEEP)
    assert again.skipped and len(server.requests) == 2


def test_partial_file_from_an_earlier_run_is_resumed(server, tmp_path):
    data = payload(200_000)
    server.files["/x.zip"] = data
    (tmp_path / "x.zip.part").write_bytes(data[:123_456])
    res = fetch(server.url + "/x.zip", tmp_path / "x.zip", checksum="sha256:" + hashlib.sha256(data).hexdigest(),
                sleep=NO_SLEEP)
    assert res.resumed_from == 123_456
    assert server.requests == [("/x.zip", "bytes=123456-")]
    assert (tmp_path / "x.zip").read_bytes() == data


def test_server_without_range_support_restarts_cleanly(server, tmp_path):
    data = payload(50_000)
    server.files["/y.tgz"] = data
    server.no_range.add("/y.tgz")
    (tmp_path / "y.tgz.part").write_bytes(b"garbage" * 100)
    fetch(server.url + "/y.tgz", tmp_path / "y.tgz", checksum=md5(data), sleep=NO_SLEEP)
    assert (tmp_path / "y.tgz").read_bytes() == data


def test_checksum_mismatch_is_a_clear_error_and_leaves_nothing_complete(server, tmp_path):
    data = payload(10_000)
    server.files["/bad.tar.gz"] = data
    wrong = "md5:" + "0" * 32
    with pytest.raises(VoxboxError, match="checksum mismatch for bad.tar.gz: expected md5 0{32}, got"):
        fetch(server.url + "/bad.tar.gz", tmp_path / "bad.tar.gz", checksum=wrong, sleep=NO_SLEEP)
    assert not (tmp_path / "bad.tar.gz").exists()
    assert not (tmp_path / "bad.tar.gz.part").exists()
    assert not (tmp_path / "bad.tar.gz.downloaded").exists()


def test_404_is_a_clear_error(server, tmp_path):
    with pytest.raises(VoxboxError, match=r"HTTP 404 .* for http://127\.0\.0\.1:\d+/gone\.tar\.gz"):
        fetch(server.url + "/gone.tar.gz", tmp_path / "gone.tar.gz", sleep=NO_SLEEP)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------- extraction

def _malicious_tars():
    def one(build):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            ok = tarfile.TarInfo("corpus/ok.txt")
            ok.size = 2
            tf.addfile(ok, io.BytesIO(b"ok"))
            build(tf)
        return buf.getvalue()

    def reg(name):
        def build(tf):
            info = tarfile.TarInfo(name)
            info.size = 4
            tf.addfile(info, io.BytesIO(b"evil"))
        return build

    def link(name, target, kind):
        def build(tf):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, target
            tf.addfile(info)
        return build

    def dev(tf):
        info = tarfile.TarInfo("corpus/null")
        info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
        tf.addfile(info)

    return {
        "dotdot": (one(reg("corpus/../../evil.txt")), "'..'"),
        "absolute": (one(reg("/tmp/voxbox-evil-abs.txt")), "absolute path"),
        "symlink": (one(link("corpus/link", "../../outside", tarfile.SYMTYPE)), "symlink"),
        "abs-symlink": (one(link("corpus/etc", "/etc", tarfile.SYMTYPE)), "symlink"),
        "hardlink": (one(link("corpus/hard", "../../outside.txt", tarfile.LNKTYPE)), "hard link"),
        "device": (one(dev), "device"),
    }


def test_unreachable_host_announces_each_retry_then_fails_clearly(tmp_path):
    # These waits (up to a minute) used to pass in silence, which looked like a hang.
    waits, lines = [], []
    with pytest.raises(VoxboxError, match=r"download failed: http://127\.0\.0\.1:9/x\.tgz: .*after 3 retries"):
        fetch("http://127.0.0.1:9/x.tgz", tmp_path / "x.tgz", retries=3, sleep=waits.append, log=lines.append)
    assert waits == [2, 4, 8] and len(lines) == 3
    assert lines[0].startswith("x.tgz: ") and "retry 1 of 3 in 2 s" in lines[0]


@pytest.mark.parametrize("kind", list(_malicious_tars()))
def test_malicious_tar_is_refused_and_nothing_lands_outside(tmp_path, kind):
    data, why = _malicious_tars()[kind]
    arc = tmp_path / "evil.tar"
    arc.write_bytes(data)
    dest = tmp_path / "a" / "b" / "dest"
    with pytest.raises(VoxboxError, match=f"unsafe archive, refused: .*{why}"):
        safe_extract(arc, dest)
    outside = {p for p in tmp_path.rglob("*") if dest not in p.parents and p != dest}
    assert outside == {arc, tmp_path / "a", tmp_path / "a" / "b"}
    assert not Path("/tmp/voxbox-evil-abs.txt").exists()
    assert not any(p.is_symlink() or p.is_char_device() for p in dest.rglob("*"))


def test_malicious_zip_is_refused_before_writing_anything(tmp_path):
    arc = tmp_path / "evil.zip"
    with zipfile.ZipFile(arc, "w") as zf:
        zf.writestr("corpus/ok.txt", "ok")
        zf.writestr("../escape.txt", "evil")
    dest = tmp_path / "dest"
    with pytest.raises(VoxboxError, match="'..'"):
        safe_extract(arc, dest)
    assert list(dest.iterdir()) == [] and not (tmp_path / "escape.txt").exists()


def test_mirror_keeps_the_path():
    assert apply_mirror("https://www.openslr.org/resources/60/dev-clean.tar.gz", "http://127.0.0.1:8/m") \
        == "http://127.0.0.1:8/m/resources/60/dev-clean.tar.gz"
    assert apply_mirror("https://a.org/x.zip", "") == "https://a.org/x.zip"
    with pytest.raises(VoxboxError, match="mirror must be a base URL"):
        apply_mirror("https://a.org/x.zip", "not-a-url")


# ------------------------------------------------------------------------ the command

def test_cli_download_with_mirror_verifies_extracts_and_skips_on_rerun(server, tmp_path, monkeypatch, capsys):
    tgz = tar_gz({"Toy/dev/a.txt": b"alpha", "Toy/dev/b.txt": b"beta"})
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        zf.writestr("Toy/test/c.txt", "gamma")
    server.files["/resources/999/dev.tar.gz"] = tgz
    server.files["/resources/999/test.zip"] = zbuf.getvalue()
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "toy.yaml").write_text(f"""
name: toy
languages: [en]
license: CC0-1.0
homepage: https://example.org/toy
sample_rate: 16000
archives:
  - {{subset: dev, url: "https://www.example.org/resources/999/dev.tar.gz", checksum: "{md5(tgz)}"}}
  - {{subset: test, url: "https://www.example.org/resources/999/test.zip", checksum: none}}
""")
    monkeypatch.setenv("VOXBOX_CATALOG", str(catalog))
    dest = tmp_path / "data"
    assert main(["download", "toy", "--download-dir", str(dest), "--mirror", server.url]) == 0
    captured = capsys.readouterr()
    assert (dest / "Toy" / "dev" / "b.txt").read_bytes() == b"beta"
    assert (dest / "Toy" / "test" / "c.txt").read_text() == "gamma"
    assert "test.zip: the catalog has no checksum for this archive; it will NOT be verified" in captured.err
    assert "1 not checksum-verified" in captured.out
    n = len(server.requests)
    assert main(["download", "toy", "--download-dir", str(dest), "--mirror", server.url, "-s", "dev"]) == 0
    assert "already downloaded and extracted, skipped" in capsys.readouterr().err
    assert len(server.requests) == n
    monkeypatch.setenv("VOXBOX_MIRROR", server.url + "/nowhere")
    assert main(["download", "toy", "--download-dir", str(tmp_path / "other"), "-s", "dev"]) == 1
    assert "HTTP 404" in capsys.readouterr().err
    assert main(["download", "toy", "--download-dir", str(dest), "-s", "nosuch"]) == 1
    assert "unknown subset nosuch" in capsys.readouterr().err


def test_download_corpus_removes_archives_when_asked(server, tmp_path):
    tgz = tar_gz({"C/x.txt": b"x"})
    server.files["/c.tar.gz"] = tgz
    entry = CorpusEntry(name="c", title="c", languages=("en",), license="x", homepage="h", sample_rate=None,
                        audio_format="wav", native_labels={},
                        archives=(Archive("all", "http://elsewhere.invalid/c.tar.gz", checksum=md5(tgz)),))
    reps = download_corpus(entry, tmp_path, mirror=server.url, keep_archives=False)
    assert reps[0].verified == md5(tgz) and reps[0].members == 1
    assert (tmp_path / "C" / "x.txt").read_bytes() == b"x" and not (tmp_path / "archives" / "c.tar.gz").exists()


def test_download_then_prepare_end_to_end(server, tmp_path, monkeypatch, capsys):
    """A catalog entry overridden for the test (same name as the real one), served by
    the local server through --mirror, then prepared from the download folder."""
    import numpy as np
    import soundfile as sf

    from voxbox.manifest import read_manifest

    wav = io.BytesIO()
    sf.write(wav, np.zeros(1200, dtype="float32"), 24000, format="WAV", subtype="PCM_16")
    tgz = tar_gz({"LibriTTS/speakers.tsv": b"READER\tGENDER\tSUBSET\tNAME\n84\tF\tdev-clean\tX\n",
                  "LibriTTS/dev-clean/84/121/84_121_000001_000000.wav": wav.getvalue(),
                  "LibriTTS/dev-clean/84/121/84_121_000001_000000.normalized.txt": b"Hello world."})
    server.files["/resources/60/dev-clean.tar.gz"] = tgz
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "libritts.yaml").write_text(f"""
name: libritts
languages: [en]
license: CC-BY-4.0
homepage: https://www.openslr.org/60/
archives:
  - {{subset: dev-clean, url: "https://www.openslr.org/resources/60/dev-clean.tar.gz", checksum: "{md5(tgz)}"}}
""")
    monkeypatch.setenv("VOXBOX_CATALOG", str(catalog))
    monkeypatch.setenv("VOXBOX_MIRROR", server.url)
    dest = tmp_path / "libritts"
    assert main(["download", "libritts", "--download-dir", str(dest)]) == 0
    assert server.requests == [("/resources/60/dev-clean.tar.gz", None)]
    out = tmp_path / "m.jsonl"
    assert main(["prepare", "libritts", "--root", str(dest), "--out", str(out)]) == 0
    assert "1 records" in capsys.readouterr().out
    (rec,) = list(read_manifest(out))
    assert (rec.text, rec.gender, rec.num_samples) == ("Hello world.", "female", 1200)
    assert not (tmp_path / "m.rejects.jsonl").exists()


# ------------------------------------------------------------------- issue 11: escapes

def _tar(build) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        build(tf)
    return buf.getvalue()


def _add(tf, name, data=None, kind=None, target=None):
    info = tarfile.TarInfo(name)
    if kind is not None:
        info.type = kind
    if target is not None:
        info.linkname = target
    if data is not None:
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    else:
        tf.addfile(info)


def _realpath_defeating_chain(tf):
    """CVE-2025-4517's shape: nested links whose real path is longer than PATH_MAX, so
    realpath stops resolving and a link that leaves DEST looks inside; a hard link
    through it then lets a regular member overwrite a file outside."""
    comp, steps, path = "d" * 247, "abcdefghijklmnop", ""
    for s in steps:
        _add(tf, os.path.join(path, comp), kind=tarfile.DIRTYPE)
        _add(tf, os.path.join(path, s), kind=tarfile.SYMTYPE, target=comp)
        path = os.path.join(path, comp)
    deep = os.path.join(*steps, "l" * 254)
    _add(tf, deep, kind=tarfile.SYMTYPE, target="../" * len(steps))
    _add(tf, "escape", kind=tarfile.SYMTYPE, target=deep + "/..")
    _add(tf, "pwn", kind=tarfile.LNKTYPE, target="escape/victim.txt")
    _add(tf, "pwn", data=b"evil")


def test_a_link_chain_that_defeats_realpath_cannot_overwrite_a_file_outside(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("safe")
    arc = tmp_path / "chain.tar"
    arc.write_bytes(_tar(_realpath_defeating_chain))
    with pytest.raises(VoxboxError, match="unsafe archive, refused: .*link"):
        safe_extract(arc, tmp_path / "dest")
    assert victim.read_text() == "safe"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chain.tar", "dest", "victim.txt"]


@pytest.mark.parametrize("case", ["write-through-link", "voxbox-marker", "archives-dir", "hardlink-not-extracted",
                                  "dotdot-after-name", "link-loop", "link-to-later-link", "existing-link-in-dest"])
def test_members_that_write_through_links_or_into_voxbox_folders_are_refused(tmp_path, case):
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "keep.txt").write_text("keep")           # there before this archive
    outside = tmp_path / "outside"
    outside.mkdir()
    builds = {
        # a link inside DEST is fine; writing a member through it is not
        "write-through-link": lambda tf: (_add(tf, "corpus/sub", kind=tarfile.DIRTYPE),
                                          _add(tf, "corpus/link", kind=tarfile.SYMTYPE, target="sub"),
                                          _add(tf, "corpus/link/x.txt", b"x")),
        "voxbox-marker": lambda tf: _add(tf, "./.voxbox/other.tar.gz.extracted", b"{}"),
        "archives-dir": lambda tf: _add(tf, "archives/evil.tar.gz", b"x"),
        # a hard link to a file this archive did not write, then a member through it
        "hardlink-not-extracted": lambda tf: (_add(tf, "h", kind=tarfile.LNKTYPE, target="keep.txt"),
                                              _add(tf, "h", b"evil")),
        # "a/../.." could point elsewhere once a later member turns "a" into a link
        "dotdot-after-name": lambda tf: _add(tf, "l", kind=tarfile.SYMTYPE, target="a/../b"),
        "link-loop": lambda tf: (_add(tf, "a", kind=tarfile.SYMTYPE, target="b"),
                                 _add(tf, "b", kind=tarfile.SYMTYPE, target="a"),
                                 _add(tf, "c", kind=tarfile.SYMTYPE, target="a/x")),
        "link-to-later-link": lambda tf: (_add(tf, "sub", kind=tarfile.DIRTYPE),
                                          _add(tf, "sub/l", kind=tarfile.SYMTYPE, target="../up"),
                                          _add(tf, "up", kind=tarfile.SYMTYPE, target="..")),
        "existing-link-in-dest": lambda tf: _add(tf, "mine/x.txt", b"x"),
    }
    if case == "existing-link-in-dest":
        (dest / "mine").symlink_to(outside)
    arc = tmp_path / "a.tar"
    arc.write_bytes(_tar(builds[case]))
    with pytest.raises(VoxboxError, match="unsafe archive, refused"):
        safe_extract(arc, dest)
    assert (dest / "keep.txt").read_text() == "keep"
    assert list(outside.iterdir()) == []
    assert not (dest / ".voxbox").exists() and not (dest / "archives").exists()
    assert not (dest / "corpus" / "sub" / "x.txt").exists()


def test_ordinary_links_inside_an_archive_still_extract(tmp_path):
    def build(tf):
        _add(tf, "./", kind=tarfile.DIRTYPE)
        _add(tf, "./corpus/a/clip.txt", b"hello")
        _add(tf, "./corpus/b/same.txt", kind=tarfile.LNKTYPE, target="./corpus/a/clip.txt")
        _add(tf, "./corpus/b/alias.txt", kind=tarfile.SYMTYPE, target="../a/clip.txt")
        _add(tf, "./corpus/latest", kind=tarfile.SYMTYPE, target="a")
    arc = tmp_path / "ok.tar"
    arc.write_bytes(_tar(build))
    assert safe_extract(arc, tmp_path / "dest") == 5
    c = tmp_path / "dest" / "corpus"
    assert (c / "b" / "same.txt").read_text() == "hello" and (c / "b" / "alias.txt").read_text() == "hello"
    assert (c / "latest" / "clip.txt").read_text() == "hello"


# ------------------------------------------------------------- issue 11: 416 and .part

def test_a_stale_part_longer_than_the_servers_file_is_downloaded_again(server, tmp_path):
    data = payload(20_000)
    server.files["/s.tgz"] = data
    (tmp_path / "s.tgz.part").write_bytes(b"stale" * 5_000)       # 25,000 bytes: longer than the file
    lines = []
    res = fetch(server.url + "/s.tgz", tmp_path / "s.tgz", sleep=NO_SLEEP, log=lines.append)
    assert (tmp_path / "s.tgz").read_bytes() == data and res.bytes == len(data)
    assert server.requests == [("/s.tgz", "bytes=25000-"), ("/s.tgz", None)]
    assert "holds 25000 bytes but the server's file has 20000 bytes; downloading it again" in lines[0]


def test_a_part_exactly_as_long_as_the_servers_file_is_complete_on_416(server, tmp_path):
    data = payload(20_000)
    server.files["/c.tgz"] = data
    (tmp_path / "c.tgz.part").write_bytes(data)
    res = fetch(server.url + "/c.tgz", tmp_path / "c.tgz", checksum=md5(data), sleep=NO_SLEEP)
    assert res.bytes == len(data) and server.requests == [("/c.tgz", "bytes=20000-")]


def test_a_second_download_into_the_same_folder_is_refused(server, tmp_path):
    # Two downloads into one folder would append to the same .part files.
    from adversarial import busy, held_lock

    data = tar_gz({"corpus/a.txt": b"hello"})
    server.files["/c.tgz"] = data
    entry = CorpusEntry(name="tiny", title="t", languages=("en",), license="x", homepage="h", sample_rate=None,
                        audio_format="wav", native_labels={},
                        archives=(Archive("all", server.url + "/c.tgz", checksum=md5(data)),))
    dest = tmp_path / "dest"
    with held_lock(dest) as pid, pytest.raises(VoxboxError, match=re.escape(busy(dest, pid))):
        download_corpus(entry, dest)
    assert server.requests == []
    download_corpus(entry, dest)
    assert (dest / "corpus" / "a.txt").read_text() == "hello"
