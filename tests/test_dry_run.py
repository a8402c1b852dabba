"""voxbox build --dry-run: the plan a build would make, no audio touched, nothing written."""

import json

import pytest

from voxbox.cli import main
from voxbox.manifest import ManifestWriter
from voxbox.record import Utterance


def _manifest(path, n, missing_header_every=0):
    with ManifestWriter(path) as w:
        for i in range(n):
            no_header = missing_header_every and i % missing_header_every == 0
            w.write(Utterance(index=f"syn_{i:016x}", corpus="syn", source_path=f"nowhere/{i}.flac",
                              corpus_root="/does/not/exist", split="dev" if i % 10 == 0 else "train",
                              sample_rate=None if no_header else 16000,
                              num_samples=None if no_header else 16000 * (1 + i % 7),
                              channels=None if no_header else 1, duration=1.0 + i % 7, text="hello"))
    return path


def test_dry_run_manifest_touches_no_audio(tmp_path, capsys, monkeypatch):
    import voxbox.build.input as inp
    import voxbox.shards.writer as writer

    def no_audio(*a, **k):
        raise AssertionError("dry run looked at an audio file")

    monkeypatch.setattr(inp, "_audio_file", no_audio)
    monkeypatch.setattr(writer.os.path, "getsize", no_audio)
    m = _manifest(tmp_path / "m.jsonl", 200, missing_header_every=9)
    out = tmp_path / "out"
    assert main(["--json", "build", "--manifest", str(m), "-o", str(out), "--dry-run", "--shard-records", "30"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert not out.exists()  # nothing written to --out
    assert data["dry_run"] and data["records"] == 200
    assert data["splits"]["dev"]["records"] == 20 and data["splits"]["train"]["records"] == 180
    assert data["shards"] == 1 + 6  # dev: 20 records in one shard; train: 180 / 30
    expect_h = sum(1 + i % 7 for i in range(200)) / 3600.0
    assert data["hours"] == pytest.approx(expect_h, abs=1e-5)
    big = data["largest_shard"]
    assert big["records"] == 30 and big["split"] == "train" and big["estimated_mb"] > 0


def test_dry_run_matches_the_build(tmp_path, capsys):
    out = tmp_path / "b"
    args = ["build", "--corpus", "sample", "--stages", "", "-j", "1", "--shard-records", "4"]
    assert main(["--json", *args, "--dry-run"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert main(["--json", *args, "-o", str(out)]) == 0
    index = json.loads(capsys.readouterr().out)
    assert (plan["shards"], plan["records"]) == (index["totals"]["shards"], index["totals"]["records"])
    assert plan["hours"] == pytest.approx(index["totals"]["hours"], abs=1e-5)
    shard = index["shards"][plan["largest_shard"]["shard"]]
    assert (shard["records"], shard["first_index"]) == (plan["largest_shard"]["records"],
                                                       plan["largest_shard"]["first_index"])
    assert main(["build", "--corpus", "sample", "--dry-run"]) == 0  # -o optional for a dry run
    text = capsys.readouterr().out
    assert "6 records" in text and "largest shard: voxbox-000000" in text


def test_build_without_out_is_an_error(capsys):
    assert main(["build", "--corpus", "sample"]) == 1
    assert "give --out" in capsys.readouterr().err


def test_dry_run_no_usable_records(tmp_path, capsys):
    m = tmp_path / "m.jsonl"
    m.write_text("")
    assert main(["build", "--manifest", str(m), "--dry-run"]) == 1
    assert "no usable records" in capsys.readouterr().err
