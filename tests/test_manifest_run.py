"""Manifest runs (`voxbox annotate`, `voxbox tokenize`) on the build's engine and journal
rules: in input order on any number of workers, resumable part by part, a damaged part
redone, a run of other options refused, all-rejected runs failing with the reasons."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from voxbox.build.manifest_run import run_manifest, stream_records, work_dir
from voxbox.errors import VoxboxError
from voxbox.manifest import read_manifest, read_rejects, rejects_path, write_manifest
from voxbox.record import Utterance

from voxbox_build_fixtures import TinyStage, make_corpus


class _StopAt(TinyStage):
    """TinyStage that stops the run at its N-th batch (a BaseException, like Ctrl-C)."""

    calls = 0
    stop_at = 0

    def process_batch(self, recs):
        type(self).calls += 1
        if type(self).calls == type(self).stop_at:
            raise KeyboardInterrupt
        return super().process_batch(recs)


def _interrupt_at_batch(n: int, src: Path, out: Path) -> None:
    """Run (batches of 2, parts of 4) and stop it like Ctrl-C at its n-th batch."""
    _StopAt.calls, _StopAt.stop_at = 0, n
    with pytest.raises(KeyboardInterrupt):
        run_manifest(src, out, [_StopAt()], batch_size=2, part_records=4)


class _Seen(TinyStage):
    seen: list = []

    def process_batch(self, recs):
        type(self).seen.extend(r.index for r in recs)
        return super().process_batch(recs)


@pytest.fixture()
def corpus(tmp_path):
    recs = make_corpus(tmp_path / "c", n=11, reject_every=4)  # REJECT in records 1, 5, 9
    src = tmp_path / "in.jsonl"
    write_manifest(src, recs)
    return src, recs


def _lines(path):
    return path.read_bytes().splitlines()


def test_same_output_inline_and_on_a_pool_in_input_order(corpus, tmp_path):
    src, recs = corpus
    one = run_manifest(src, tmp_path / "one.jsonl", [TinyStage(tokens=True)], batch_size=2, part_records=3)
    two = run_manifest(src, tmp_path / "two.jsonl", [TinyStage(tokens=True)], workers=2, batch_size=2,
                       part_records=3)
    assert _lines(tmp_path / "one.jsonl") == _lines(tmp_path / "two.jsonl")
    assert _lines(rejects_path(tmp_path / "one.jsonl")) == _lines(rejects_path(tmp_path / "two.jsonl"))
    got = list(read_manifest(tmp_path / "two.jsonl"))
    kept = [r.index for r in recs if "REJECT" not in r.text]
    assert [r.index for r in got] == kept and all(len(r.global_tokens) == 32 for r in got)
    rejects = list(read_rejects(rejects_path(tmp_path / "two.jsonl")))
    assert [(r.index, r.reason) for r in rejects] == [(recs[i].index, "tiny_reject") for i in (1, 5, 9)]
    assert one["records"] == two["records"] == 8 and one["rejected"] == 3 and two["resumed_from"] == 0
    assert not work_dir(tmp_path / "one.jsonl").exists()
    # The same engine without a journal, for records in memory.
    streamed = list(stream_records(recs, [TinyStage(tokens=True)], batch_size=4))
    assert [r.to_dict() for r in streamed if isinstance(r, Utterance)] == [r.to_dict() for r in got]


def test_resume_redoes_only_unfinished_parts(corpus, tmp_path):
    src, recs = corpus
    out = tmp_path / "out.jsonl.gz"
    _interrupt_at_batch(4, src, out)
    journal = [json.loads(line) for line in (work_dir(out) / "journal.jsonl").read_text().splitlines()]
    assert [e["kind"] for e in journal] == ["start", "shard"]  # part 0 (4 records, 2 batches) finished
    assert not out.exists() and list(work_dir(out).glob("*.partial")) == []  # the open part was aborted
    _Seen.seen = []
    s = run_manifest(src, out, [_Seen()], batch_size=2, part_records=4)
    assert _Seen.seen == [r.index for r in recs[4:]] and s["resumed_from"] == 4
    full = run_manifest(src, tmp_path / "full.jsonl.gz", [TinyStage()], batch_size=2, part_records=4)
    assert out.read_bytes() == (tmp_path / "full.jsonl.gz").read_bytes()
    assert s["records"] == full["records"] and not work_dir(out).exists()


def test_a_damaged_part_is_redone(corpus, tmp_path):
    src, recs = corpus
    out = tmp_path / "out.jsonl"
    _interrupt_at_batch(5, src, out)  # parts 0 and 1 finished
    part = work_dir(out) / "part-000001.jsonl"
    part.write_bytes(part.read_bytes()[:-10])
    _Seen.seen, logged = [], []
    run_manifest(src, out, [_Seen()], batch_size=2, part_records=4, log=logged.append)
    assert _Seen.seen == [r.index for r in recs[4:]]
    assert any(m.startswith("part 1: part-000001.jsonl: size") for m in logged), logged
    assert len(list(read_manifest(out))) == 8


def test_a_run_of_other_options_is_refused_unless_nothing_finished(corpus, tmp_path):
    src, _ = corpus
    out = tmp_path / "out.jsonl"
    _interrupt_at_batch(3, src, out)
    with pytest.raises(VoxboxError, match="holds an unfinished run with other input or options; rerun"):
        run_manifest(src, out, [TinyStage(tokens=True)], batch_size=2, part_records=4)
    with pytest.raises(VoxboxError, match="other input or options"):
        run_manifest(src, out, [TinyStage()], batch_size=2, part_records=4, limit=5)
    # A failure before any part finished leaves nothing behind, so a corrected command runs.
    _interrupt_at_batch(1, src, tmp_path / "b.jsonl")
    assert not work_dir(tmp_path / "b.jsonl").exists()
    assert run_manifest(src, tmp_path / "b.jsonl", [TinyStage(tokens=True)], part_records=4)["records"] == 8


def test_every_record_rejected_fails_with_the_reasons(tmp_path):
    recs = [r.replace(text="REJECT all") for r in make_corpus(tmp_path / "c", n=3)]
    src = tmp_path / "in.jsonl"
    write_manifest(src, recs)
    out = tmp_path / "out.parquet"
    with pytest.raises(VoxboxError, match=r"every record was rejected, nothing to write: 3 rejected \(3 tiny: tiny_reject"):
        run_manifest(src, out, [TinyStage()])
    assert not out.exists() and not work_dir(out).exists()
    assert [r.reason for r in read_rejects(rejects_path(out))] == ["tiny_reject"] * 3


def test_bad_arguments_fail_before_reading(tmp_path, corpus):
    src, _ = corpus
    for kw, msg in (({"engine": "spark"}, "unknown engine"), ({"workers": 0}, "workers must be at least 1"),
                    ({"batch_size": 0}, "batch size and part size must be at least 1")):
        with pytest.raises(VoxboxError, match=msg):
            run_manifest(src, tmp_path / "o.jsonl", [TinyStage()], **kw)
    with pytest.raises(VoxboxError, match="output must differ from the input"):
        run_manifest(src, src, [TinyStage()])
    with pytest.raises(VoxboxError, match="manifest not found"):
        run_manifest(tmp_path / "nope.jsonl", tmp_path / "o.jsonl", [TinyStage()])
    assert not (tmp_path / "o.jsonl").exists() and not work_dir(tmp_path / "o.jsonl").exists()


def test_cli_annotate_and_tokenize_take_an_engine(tmp_path, corpus, capsys):
    from voxbox.cli import main

    src, _ = corpus
    assert main(["annotate", str(src), "--out", str(tmp_path / "a.jsonl"), "--engine", "spark"]) == 1
    assert capsys.readouterr().err.strip() == "error: unknown engine 'spark' (use local or ray)"
    model = tmp_path / "model"
    assert main(["tokenize", str(src), "--model-dir", str(model), "--out", str(tmp_path / "t.jsonl"),
                 "--engine", "spark"]) == 1
    assert capsys.readouterr().err.strip() == "error: unknown engine 'spark' (use local or ray)"


# ------------------------------------------------------------------------------ issue 11

def test_the_input_rejects_are_carried_forward_and_never_overwritten(corpus, tmp_path):
    # annotate did not carry its input's rejects: prepare -> annotate -> build reported 0
    # rejected, and `annotate m.jsonl --out m.parquet` overwrote m.rejects.jsonl.
    from voxbox.record import Rejection
    from voxbox.manifest import RejectsWriter

    src, recs = corpus
    with RejectsWriter(rejects_path(src)) as w:          # what prepare left beside the manifest
        for i in range(2):
            w.write(Rejection("prepare", f"gone{i}.wav", "truncated_audio", f"synth_gone{i}"))
    before = rejects_path(src).read_bytes()
    with pytest.raises(VoxboxError, match=r"its rejects would go to .*in\.rejects\.jsonl, which holds the "
                                          r"rejects of .*in\.jsonl; give --out another name \(e\.g\. "):
        run_manifest(src, tmp_path / "in.parquet", [TinyStage()])
    assert rejects_path(src).read_bytes() == before
    out = tmp_path / "out.jsonl"
    s = run_manifest(src, out, [TinyStage()], part_records=4)
    rejected = list(read_rejects(rejects_path(out)))
    assert [r.stage for r in rejected] == ["prepare", "prepare", "tiny", "tiny", "tiny"]
    assert (s["carried"], s["rejected"]) == (2, 3)
    assert len(list(read_manifest(out))) + len(rejected) == len(recs) + 2      # inputs = records + rejects
    assert rejects_path(src).read_bytes() == before


def test_a_malformed_record_is_a_reject_naming_line_and_field_and_the_rest_runs(corpus, tmp_path):
    import json as _json

    from adversarial import bad_records

    src, recs = corpus
    good = _json.loads(src.read_text().splitlines()[0])
    bad = bad_records(good)
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(src.read_text() + "\n".join(line for line, _ in bad) + "\n")
    out = tmp_path / "o.jsonl"
    s = run_manifest(mixed, out, [TinyStage()], part_records=4, batch_size=2)
    rejects = list(read_rejects(rejects_path(out)))
    assert s["records"] + s["rejected"] == len(recs) + len(bad)
    by_line = {int(r.detail.split(":")[1]): r for r in rejects if r.stage == "manifest"}
    for i, (_, field) in enumerate(bad):
        r = by_line[len(recs) + 1 + i]
        assert field == "line" or f"field '{field}'" in r.detail, r.detail


def test_a_second_annotate_on_the_same_output_is_refused(corpus, tmp_path):
    from adversarial import busy, held_lock

    src, _ = corpus
    out = tmp_path / "o.jsonl"
    with held_lock(out) as pid, pytest.raises(VoxboxError, match=re.escape(busy(out, pid))):
        run_manifest(src, out, [TinyStage()])
    assert not out.exists() and not work_dir(out).exists()
