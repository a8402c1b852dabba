"""voxbox validate: a clean build passes; each kind of damage is named."""

from __future__ import annotations

import io
import json
import re
import shutil
import tarfile

import pytest

from voxbox.cli import main
from voxbox.record import Utterance
from voxbox.shards import write_dataset
from voxbox.dataset.validate import expected_semantic_tokens, validate

from voxbox_build_fixtures import expected_semantic, make_corpus


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("val")
    recs = make_corpus(tmp / "corpus", n=8)
    recs = [r.replace(global_tokens=[(7 * k) % 4096 for k in range(32)],
                      semantic_tokens=[k % 8192 for k in range(expected_semantic(r.num_samples, r.sample_rate))])
            for r in recs]
    out = tmp / "good"
    write_dataset(recs, out, name="v", shard_records=3)
    return tmp, recs, out


def _rewrite_tar(path, edit):
    """Rewrite a shard's tar with ``edit(members)`` applied to its (TarInfo, bytes) list."""
    with tarfile.open(path) as t:
        members = [(m, t.extractfile(m).read()) for m in t.getmembers()]
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as t:
        for m, d in edit(members):
            t.addfile(m, io.BytesIO(d))


def _copy(good, tmp_path):
    dst = tmp_path / "ds"
    shutil.copytree(good, dst)
    return dst


def test_clean_build_passes(good, capsys):
    _, recs, out = good
    report = validate(out)
    assert report.ok, report.problems
    assert report.records == len(recs) and report.shards == 3 and report.files == 6
    assert abs(report.audio_seconds - sum(r.num_samples / r.sample_rate for r in recs)) < 1e-6
    assert main(["validate", str(out)]) == 0
    assert capsys.readouterr().out.startswith("ok: 8 records")


def test_semantic_token_count_formula():
    assert expected_semantic_tokens(16000, 16000) == 49  # 1 s -> 49 frames (BiCodec)
    assert expected_semantic_tokens(48000, 24000) == 99


def test_bad_tokens_durations_and_dupes_are_named(good, tmp_path):
    _, recs, _ = good
    r0, r1, r2, r3 = recs[:4]
    bad = [
        r0.replace(global_tokens=[1] * 31),                                        # 31 global tokens
        r1.replace(semantic_tokens=[9000] + r1.semantic_tokens[1:]),               # out of range
        r2.replace(semantic_tokens=r2.semantic_tokens[:5]),                        # far too few for the audio
        r3.replace(num_samples=r3.num_samples + 100, duration=r3.duration + 1.0),  # lies about its length
    ]
    out = tmp_path / "bad"
    write_dataset(bad, out, name="b")
    report = validate(out)
    text = "\n".join(report.problems)
    assert f"{r0.index}: 31 global tokens" in text
    assert f"{r1.index}: semantic token 9000 out of range" in text
    assert f"{r2.index}: 5 semantic tokens" in text
    assert f"{r3.index}: audio is {r3.num_samples} samples" in text and "record duration" in text
    assert len(report.problems) == 10  # 5 per format


def test_corruption_and_missing_files(good, tmp_path, capsys):
    _, recs, src = good
    out = _copy(src, tmp_path)
    index = json.loads((out / "index.json").read_text())
    tar = out / index["shards"][0]["files"]["webdataset"]["path"]
    data = bytearray(tar.read_bytes())
    data[700:760] = b"\x00" * 60  # inside the first FLAC payload
    tar.write_bytes(bytes(data))
    (out / index["shards"][1]["files"]["parquet"]["path"]).unlink()
    assert main(["validate", str(out)]) == 1
    cap = capsys.readouterr()
    assert cap.err.startswith("error: ") and "problem(s)" in cap.err
    lines = cap.out.splitlines()
    assert "webdataset/v-000000.tar: sha256 does not match the index" in lines
    assert any("v-000000.tar: synth_" in l and "audio does not decode" in l for l in lines)
    assert any("v-000001.parquet: missing" in l for l in lines)


def test_duplicate_keys_and_count_mismatch(good, tmp_path):
    _, recs, src = good
    out = _copy(src, tmp_path)
    index = json.loads((out / "index.json").read_text())
    # Append a copy of the shard's first sample: a duplicate key.
    _rewrite_tar(out / index["shards"][2]["files"]["webdataset"]["path"], lambda members: members + members[:2])
    report = validate(out, check_audio=False)
    text = "\n".join(report.problems)
    assert "duplicate key" in text
    assert re.search(r"v-000002\.tar: \d+ bytes, index says \d+", text)
    assert "records, index says" in text
    assert Utterance  # noqa: B018


def test_a_record_changed_in_one_format_only_is_named(good, tmp_path):
    """The two formats of a shard are compared record by record (one digest per shard
    since validate must stay small at tens of millions of records): one changed
    transcript in the tar is found."""
    _, _, src = good
    out = _copy(src, tmp_path)
    index = json.loads((out / "index.json").read_text())

    def one_typo(members):
        m, d = next((m, d) for m, d in members if m.name.endswith(".json") and b"utterance number" in d)
        m.size = len(d.replace(b"utterance number", b"utterance numbr", 1))
        return [(x, d.replace(b"utterance number", b"utterance numbr", 1) if x is m else y) for x, y in members]
    _rewrite_tar(out / index["shards"][1]["files"]["webdataset"]["path"], one_typo)
    problems = validate(out, check_audio=False).problems
    assert any("v-000001" in p and "records differ from the" in p for p in problems), problems
    assert not any("v-000000" in p or "v-000002" in p for p in problems)


def test_rejects_count_must_match(good, tmp_path):
    _, _, src = good
    out = _copy(src, tmp_path)
    (out / "rejects.jsonl").write_text(json.dumps({"stage": "x", "path": "p", "reason": "r"}) + "\n")
    report = validate(out, check_audio=False)
    assert report.problems == ["rejects.jsonl: 1 rejections, index says 0"]


def test_not_a_dataset(tmp_path):
    assert main(["validate", str(tmp_path)]) == 1


def test_a_silent_shard_behind_annotated_values_is_caught(tmp_path):
    # Float WAVs were once stored as near-silence while pitch and loudness came from the
    # real signal; the files decoded and had the right length, so validate said ok.
    import numpy as np
    import soundfile as sf

    from adversarial import speech_like
    from voxbox.annotate.stage import AnnotateStage

    src = tmp_path / "src"
    src.mkdir()
    sf.write(src / "a.wav", speech_like(), 16000, subtype="PCM_24")
    rec = Utterance(index="t_a", source_path="a.wav", corpus_root=str(src), text="hello there", language="en")
    ann = AnnotateStage().process(rec)
    assert ann.loudness is not None and ann.pitch is not None
    write_dataset([ann], tmp_path / "ok", name="v")
    assert validate(tmp_path / "ok").ok

    quiet = tmp_path / "quiet"
    quiet.mkdir()
    sf.write(quiet / "a.wav", speech_like() * 2 ** -23, 16000, subtype="PCM_24")   # what the bug stored
    write_dataset([ann.replace(corpus_root=str(quiet))], tmp_path / "bad", name="v")
    report = validate(tmp_path / "bad")
    assert not report.ok
    assert any("stored audio is silent" in p and f"loudness {ann.loudness} LUFS" in p for p in report.problems)

    # A record from another stage (its loudness may be defined otherwise) must not be silent either.
    write_dataset([ann.replace(corpus_root=str(quiet), pitch_backend=None)], tmp_path / "plug", name="v")
    assert any("stored audio is silent (peak" in p for p in validate(tmp_path / "plug").problems)

    noise = tmp_path / "noise"
    noise.mkdir()
    sf.write(noise / "a.wav", np.random.default_rng(0).uniform(-0.9, 0.9, 19200), 16000, subtype="PCM_24")
    write_dataset([ann.replace(corpus_root=str(noise))], tmp_path / "other", name="v")
    assert any("stored audio has loudness" in p for p in validate(tmp_path / "other").problems)
