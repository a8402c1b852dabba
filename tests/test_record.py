"""The utterance record and manifest I/O: the contract every stage relies on."""

from __future__ import annotations


import pytest

from voxbox.errors import VoxboxError
from voxbox.record import (VOXBOX_FIELDS, Rejection, Utterance, age_group, audio_seconds, format_reason_counts,
                           make_index)
from voxbox.manifest import ManifestWriter, RejectsWriter, count_manifest, open_manifest, read_manifest, read_rejects, rejects_path, write_manifest


def _rec(i: int, **kw) -> Utterance:
    src = f"spk{i % 3}/utt_{i:05d}.wav"
    base = dict(index=make_index("demo", src), corpus="demo", source_path=src, text=f"text {i} é 中",
                sample_rate=24000, num_samples=24000 + i, channels=1, gender="female",
                gender_source="native", pitch=180.5 + i, semantic_tokens=[1, 2, i],
                global_tokens=list(range(32)), extra={"snr": 12.5, "n": i})
    base.update(kw)
    return Utterance(**base)


def test_index_is_stable_unique_and_a_valid_webdataset_key():
    a = make_index("libritts", "dev-clean/84/121123/84_121123_000007_000001.wav")
    assert a == make_index("libritts", "dev-clean/84/121123/84_121123_000007_000001.wav")
    assert a != make_index("libritts_r", "dev-clean/84/121123/84_121123_000007_000001.wav")
    assert a != make_index("libritts", "dev-clean/84/121123/84_121123_000007_000002.wav")
    assert a.startswith("libritts_") and "." not in a and len(a.split("_")[-1]) == 16
    # Windows-style separators name the same file.
    assert make_index("x", "a/b.wav") == make_index("x", "a\\b.wav".replace("\\", "/"))


def test_voxbox_fields_come_first_in_release_order():
    names = list(Utterance.__dataclass_fields__)
    assert tuple(names[: len(VOXBOX_FIELDS)]) == VOXBOX_FIELDS
    rec = _rec(1)
    assert list(rec.voxbox_dict()) == list(VOXBOX_FIELDS)


def test_audio_seconds_prefers_the_sample_count_then_duration():
    rec = _rec(0, duration=1.5)  # 24000 samples at 24 kHz
    assert audio_seconds(rec) == 1.0
    assert audio_seconds(rec.replace(num_samples=None)) == 1.5
    assert audio_seconds(rec.replace(sample_rate=None, duration=None)) == 0.0


def test_reason_counts_read_most_first_then_by_name():
    assert format_reason_counts({"too_short": 1, "unreadable_audio": 3, "no_text": 1}) == \
        "3 unreadable_audio, 1 no_text, 1 too_short"
    assert format_reason_counts({}) == ""


@pytest.mark.parametrize("years,group", [(5, "Child"), (11.9, "Child"), (12, "Teenager"), (17, "Teenager"),
                                         (18, "Youth-Adult"), (39, "Youth-Adult"), (40, "Middle-aged"),
                                         (59, "Middle-aged"), (60, "Elderly"), (None, None)])
def test_age_groups(years, group):
    assert age_group(years) == group


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".parquet"])
def test_manifest_round_trip(tmp_path, suffix):
    recs = [_rec(i) for i in range(2500)]  # > one parquet batch
    path = tmp_path / f"m{suffix}"
    assert write_manifest(path, recs) == 2500
    back = list(read_manifest(path))
    assert back == recs
    assert count_manifest(path) == 2500
    assert not path.with_name(path.name + ".partial").exists()


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".parquet", ".jsonl"])
def test_manifest_bytes_are_deterministic(tmp_path, suffix):
    recs = [_rec(i) for i in range(50)]
    write_manifest(tmp_path / f"a{suffix}", recs)
    write_manifest(tmp_path / f"b{suffix}", recs)
    assert (tmp_path / f"a{suffix}").read_bytes() == (tmp_path / f"b{suffix}").read_bytes()


def test_crashed_writer_leaves_no_complete_looking_file(tmp_path):
    path = tmp_path / "m.jsonl"
    with pytest.raises(RuntimeError):
        with ManifestWriter(path) as w:
            w.write(_rec(1))
            raise RuntimeError("boom")
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []  # and no .partial litter either


def test_a_folder_as_output_manifest_is_refused_before_writing(tmp_path):
    # It used to fail only at the final rename, after the whole run, leaving a .partial.
    (tmp_path / "out.jsonl").mkdir()
    with pytest.raises(VoxboxError, match="is a folder; give a manifest file name"):
        with ManifestWriter(tmp_path / "out.jsonl"):
            raise AssertionError("opened")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_unknown_keys_are_kept_not_dropped(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"index": "a_1", "text": "hi", "normalized_text": "HI"}\n\n')
    (rec,) = list(read_manifest(path))
    assert rec.text == "hi" and rec.extra == {"normalized_text": "HI"}


def test_bad_manifest_lines_name_the_line(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"index": "a_1"}\n{oops\n')
    with pytest.raises(VoxboxError, match=r"m\.jsonl:2"):
        list(read_manifest(path))
    path.write_text('{"text": "no index"}\n')
    with pytest.raises(VoxboxError, match=r"m\.jsonl:1: field .index.: record without an index"):
        list(read_manifest(path))
    with pytest.raises(VoxboxError, match="unknown manifest format"):
        write_manifest(tmp_path / "m.csv", [])
    with pytest.raises(VoxboxError, match="not found"):
        list(read_manifest(tmp_path / "missing.jsonl"))


def test_unreadable_manifests_are_one_line_errors(tmp_path):
    # Each of these once escaped as a raw AttributeError/FileNotFoundError/ArrowInvalid/...
    (tmp_path / "list.jsonl").write_text('{"index": "a"}\n[1, 2]\n')
    (tmp_path / "bin.jsonl").write_bytes(b'\xff\xfe{"index": "a"}\n')
    (tmp_path / "g.jsonl.gz").write_text("not gzip")
    (tmp_path / "g.parquet").write_text("not parquet")
    (tmp_path / "d.jsonl").mkdir()
    (tmp_path / "empty.jsonl").write_text("\n")
    cases = {"list.jsonl": r"list\.jsonl:2: expected a JSON object", "bin.jsonl": "expected a UTF-8 JSONL",
             "g.jsonl.gz": "expected a gzipped JSONL", "g.parquet": "expected a Parquet file",
             "d.jsonl": "is a folder", "missing.jsonl": "manifest not found",
             "empty.jsonl": "manifest has no records"}
    for name, msg in cases.items():
        with pytest.raises(VoxboxError, match=msg):
            total, recs = open_manifest(tmp_path / name)
            list(recs)
    # A built dataset's Parquet shard carries audio: pointed at the right reader, not a TypeError later.
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"index": ["a"], "audio": [{"bytes": b"RIFF", "path": "a.wav"}]}),
                   tmp_path / "shard.parquet")
    with pytest.raises(VoxboxError, match="dataset shard"):
        list(read_manifest(tmp_path / "shard.parquet"))


def test_rejects_file_sits_next_to_manifest_and_summarises(tmp_path):
    assert rejects_path(tmp_path / "x.jsonl.gz") == tmp_path / "x.rejects.jsonl"
    assert rejects_path(tmp_path / "x.parquet") == tmp_path / "x.rejects.jsonl"
    with RejectsWriter(rejects_path(tmp_path / "x.jsonl")) as rw:
        rw.write(Rejection("prepare", "a.wav", "unreadable_audio", detail="bad header"))
        rw.write(Rejection("prepare", "b.wav", "unreadable_audio"))
        rw.write(Rejection("prepare", "c.wav", "missing_transcript"))
        summary = rw.summary()
    assert summary.startswith("3 rejected (2 prepare: unreadable_audio, 1 prepare: missing_transcript)")
    back = list(read_rejects(tmp_path / "x.rejects.jsonl"))
    assert [r.path for r in back] == ["a.wav", "b.wav", "c.wav"] and back[0].detail == "bad header"


def test_replace_does_not_mutate():
    rec = _rec(3)
    new = rec.replace(pitch=100.0)
    assert rec.pitch == 183.5 and new.pitch == 100.0 and new.index == rec.index
    assert rec.audio_path.as_posix().endswith(rec.source_path)
