"""Audio read straight from archives (issue 13, capability 2): members of uncompressed
tars by byte range from a per-tar index, .tar.gz members in one sequential pass, nothing
extracted unless asked; the built shards are byte-identical to the extracted path."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from corpus_fixtures import Clips, tar_bytes, tar_folder, write
from voxbox import media
from voxbox.record import Rejection, Utterance
from voxbox.sources.corpora import get_recipe


def emilia_tar(clips, root: Path, n: int = 4, name: str = "EN-B000000.tar") -> Path:
    members = []
    for i in range(n):
        uid = f"EN_B00000_S00000_W{i:06d}"
        buf = root.parent / "src" / f"{uid}.mp3"
        clips.put(buf, i)
        meta = {"id": uid, "wav": f"{uid}.mp3", "text": clips.text(i), "duration": 2.0, "speaker": "EN_B00000_S00000",
                "language": "en", "dnsmos": 3.0 + i / 10}
        members += [(f"./{uid}.json", json.dumps(meta).encode()), (f"./{uid}.mp3", buf.read_bytes())]
    return tar_bytes(root / "Emilia" / "EN" / name, members)


def shard_digests(out: Path) -> dict:
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file() and p.suffix in (".tar", ".parquet")}


def test_tar_index_reads_members_by_byte_range(tmp_path, shared):
    clips = Clips(shared)
    tar = emilia_tar(clips, tmp_path / "c")
    index = media.tar_index(tar)
    assert sorted(index) == sorted(f"EN_B00000_S00000_W{i:06d}.{e}" for i in range(4) for e in ("json", "mp3"))
    with tarfile.open(tar) as tf:  # the real library agrees on every member's bytes
        for ti in tf:
            assert media.read_tar_member(tar, media.member_name(ti.name)) == tf.extractfile(ti).read()
    assert media.tar_index(tar) is index  # built once per tar (per process)
    with pytest.raises(media.MediaError) as e:
        media.read_tar_member(tar, "nope.mp3")
    assert e.value.reason == "missing_audio"


def test_tgz_members_stream_once_per_task(tmp_path, shared):
    clips = Clips(shared)
    files = [clips.put(tmp_path / "src" / f"a{i}.wav", i) for i in range(3)]
    tgz = tar_folder(tmp_path / "c" / "x.tar.gz", [(f"d/{p.name}", p) for p in files], gz=True)
    recs = [Utterance(index=f"t_{i}", source_path=f"x.tar.gz/d/a{i}.wav", corpus_root=str(tmp_path / "c"))
            for i in range(3)]
    passes = []
    real = media.stream_members

    def counting(path, wanted=None):
        passes.append(path)
        return real(path, wanted)

    media.stream_members = counting
    try:
        with media.prefetch(recs):
            got = [media.record_bytes(r) for r in recs]
    finally:
        media.stream_members = real
    assert passes == [tgz] and got == [p.read_bytes() for p in files]
    assert not media._PREFETCHED  # released after the task


@pytest.mark.slow
def test_emilia_tar_builds_byte_identical_in_place_and_extracted(tmp_path, shared):
    """Members read in place give exactly the shards that the extracted copies give."""
    from voxbox.build.run import build, load_pipeline

    clips = Clips(shared)
    root = tmp_path / "corpus"
    emilia_tar(clips, root)
    pipe = load_pipeline(stages=["annotate"])
    outs = {}
    for extract in (False, True):
        out = tmp_path / f"out-{extract}"
        build(get_recipe("emilia", extract=extract).prepare(root), out, pipe, workers=1)
        outs[extract] = shard_digests(out)
        assert (root / ".voxbox" / "extracted").exists() == extract  # nothing extracted unless asked
    assert outs[False] == outs[True] and len(outs[False]) == 2


def test_release_tgz_build_reads_each_archive_once_per_task(tmp_path, shared):
    """VoxBox-release layout (.tar.gz shards): the records' audio comes out of the
    archives unchanged (FLAC shard audio decodes to the member's samples)."""
    from voxbox.dataset import open_dataset
    from voxbox.dataset.reader import decode_audio
    from voxbox.shards import write_dataset

    clips = Clips(shared)
    root = tmp_path / "rel"
    rows, members = [], []
    for i in range(4):
        p = clips.put(tmp_path / "src" / f"casia_{i:010d}.wav", i)
        members.append((p.name, p))
        rows.append({"index": f"casia_{i:010d}", "split": "train", "language": "zh", "gender": "female",
                     "age": "Youth-Adult", "emotion": "HAPPY", "text": "好", "wav_path": f"casia/{p.name}"})
    write(root / "metadata" / "casia.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    tar_folder(root / "audios" / "casia" / "casia_0000.tar.gz", members[:2], gz=True)
    tar_folder(root / "audios" / "casia" / "casia_0001.tar.gz", members[2:], gz=True)
    out = [r for r in get_recipe("voxbox").prepare(root, ["casia"], workers=1)]
    recs = [r for r in out if isinstance(r, Utterance)]
    assert len(recs) == 4 and not [r for r in out if isinstance(r, Rejection)]
    # Members of one archive sort together (the index's first digits name the archive).
    by_archive = {}
    for r in recs:
        by_archive.setdefault(r.source_path.split("/")[2], set()).add(r.index.split("_")[1][:6])
    assert all(len(v) == 1 for v in by_archive.values()) and len(by_archive) == 2
    write_dataset(recs, tmp_path / "out", name="rel")
    for rec, data, _ in open_dataset(tmp_path / "out").samples("webdataset"):
        samples, _ = decode_audio(data, dtype="int16")
        src = tmp_path / "src" / rec.source_path.rsplit("/", 1)[1]
        assert np.array_equal(samples[:, 0], sf.read(str(src), dtype="int16")[0])


def test_extract_option_parses_words(tmp_path):
    from voxbox.errors import VoxboxError

    assert get_recipe("emilia", extract="false").opts["extract"] is False
    assert get_recipe("emilia", extract="true").opts["extract"] is True
    with pytest.raises(VoxboxError, match="wants true or false"):
        get_recipe("emilia", extract="maybe")


def test_damaged_tgz_is_one_bad_archive_rejection(tmp_path, shared):
    from corpus_fixtures import Clips as _Clips

    clips = _Clips(shared)
    src = tmp_path / "src" / "WenetSpeech4TTS_Basic_1"
    clips.put(src / "wavs" / "Y1.wav", 0)
    write(src / "txts" / "Y1.txt", "Y1\t文本\n")
    good = tar_folder(tmp_path / "c" / "Basic" / "WenetSpeech4TTS_Basic_1.tar.gz",
                      [(f"WenetSpeech4TTS_Basic_1/{p.relative_to(src).as_posix()}", p)
                       for p in sorted(src.rglob("*.*"))], gz=True)
    data = good.read_bytes()
    (tmp_path / "c" / "Basic" / "WenetSpeech4TTS_Basic_2.tar.gz").write_bytes(data[:len(data) // 2])
    out = list(get_recipe("wenetspeech4tts").prepare(tmp_path / "c", workers=1))
    recs = [r for r in out if isinstance(r, Utterance)]
    rejs = [r for r in out if isinstance(r, Rejection)]
    assert len(recs) == 1 and [(r.reason, r.path) for r in rejs] == [
        ("bad_archive", "Basic/WenetSpeech4TTS_Basic_2.tar.gz")]
