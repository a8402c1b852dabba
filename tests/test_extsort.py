"""The on-disk sort and the streaming plan: same order as an in-memory sort, duplicate
indices found across run files, the same shards as plan_shards, bounded run files."""

import json
import random

import pytest

from voxbox.build.extsort import ExternalSort
from voxbox.build.input import prepare_input
from voxbox.record import Rejection, Utterance
from voxbox.shards.writer import estimate_bytes, plan_shards


def _items(n, seed=0):
    rng = random.Random(seed)
    return [(rng.choice(["dev", "train", "test"]), f"c_{rng.getrandbits(20):05x}", rng.random(), i,
             bytes([rng.getrandbits(8)])) for i in range(n)]


@pytest.mark.parametrize("run_items,fan_in", [(1, 2), (7, 3), (64, 64), (10_000, 64)])
def test_merge_order_equals_sorted(tmp_path, run_items, fan_in):
    items = _items(1000)
    with ExternalSort(tmp_path / "s", run_items, fan_in) as s:
        for it in items:
            s.add(it)
        if run_items < 1000:
            assert len(s.runs) >= 1000 // run_items  # really spilled to disk
        assert list(s) == sorted(items)
        assert list(s) == sorted(items)  # iterating twice gives the same stream
    assert not list((tmp_path / "s").iterdir())  # run files removed on close


def test_fan_in_merges_keep_few_files(tmp_path):
    with ExternalSort(tmp_path / "s", run_items=10, fan_in=4) as s:
        for it in _items(500, seed=3):
            s.add(it)
        assert len(s.runs) == 50
        out = list(s)
        assert len(s.runs) <= 4  # merged in passes: never more than fan_in open at once
    assert out == sorted(_items(500, seed=3))


def test_add_sorted_is_one_run(tmp_path):
    with ExternalSort(tmp_path / "s", run_items=5) as s:
        s.add_sorted(iter(sorted(_items(100))))
        assert len(s.runs) == 1 and s.count == 100
        assert list(s) == sorted(_items(100))


def _rec(idx, split="train", samples=16000):
    return Utterance(index=idx, corpus="c", source_path=f"{idx}.wav", split=split, sample_rate=16000,
                     num_samples=samples, channels=1, text="x")


def _source(n, dups, seed=1):
    """n records in random index order, some indices repeated later in the stream."""
    rng = random.Random(seed)
    recs = [_rec(f"c_{i:016x}", rng.choice(["train", "dev"]), rng.randrange(8000, 320000)) for i in range(n)]
    rng.shuffle(recs)
    out = list(recs)
    for r in rng.sample(recs, dups):
        out.insert(rng.randrange(out.index(r) + 1, len(out) + 1), r.replace(text="second copy"))
    return recs, out


def test_prepare_finds_duplicates_across_runs(tmp_path):
    recs, stream = _source(300, dups=25)
    stream.append(Rejection("prepare", "bad.wav", "missing_transcript"))
    prep = prepare_input(iter(stream), tmp_path / "w", "flac", hashes=False, run_items=16)
    assert len(prep.keys.runs) > 1  # the plan sort really used several runs
    plan = prep.plan(0.05, 11)
    prep.close()
    rejects = [json.loads(line) for line in (tmp_path / "w" / "prepare.rejects.jsonl").open()]
    dup = sorted(r["index"] for r in rejects if r["reason"] == "duplicate_index")
    assert len(dup) == 25 and len(set(dup)) == 25
    assert prep.count == 300
    # The same shards as the in-memory planner, in the same order, first copy kept.
    expected = plan_shards([(r.index, estimate_bytes(r), r.split) for r in recs], 0.05, 11)
    assert [[m[0] for m in plan.members(k)] for k in range(len(plan.shards))] == expected
    with open(prep.path, "rb") as fh:
        for k in range(len(plan.shards)):
            for idx, off, length in plan.members(k):
                assert prep.read(fh, off, length).text == "x"  # the first copy, not the repeat
    assert sum(s.records for s in plan.shards) == 300
    assert all(s.split in ("train", "dev") for s in plan.shards)


def test_fingerprint_and_plan_do_not_depend_on_run_size(tmp_path):
    _, stream = _source(200, dups=10, seed=5)
    preps = [prepare_input(iter(stream), tmp_path / f"w{n}", "flac", run_items=n) for n in (3, 50, 10_000)]
    plans = [p.plan(0.1, 9) for p in preps]
    assert len({p.fingerprint for p in preps}) == 1
    assert len({tuple((s.input, s.records, s.first) for s in pl.shards) for pl in plans}) == 1


def test_recipe_repeats_found_by_the_sort_as_the_recipe_would(tmp_path, monkeypatch):
    """A build from a corpus keeps no set of ids: the recipe passes repeats on and the
    build's sort rejects them with the recipe's own duplicate_id rejection."""
    import numpy as np
    import soundfile as sf

    from voxbox.cli import main
    from voxbox.dataset.reader import open_dataset
    from voxbox.sources.corpora import get_recipe

    root = tmp_path / "c"
    root.mkdir()
    for i, name in enumerate(("a", "b")):
        sf.write(root / f"{name}.wav", np.random.default_rng(i).uniform(-0.3, 0.3, 8000), 16000)
    (root / "meta.csv").write_text("path,text\na.wav,first\nb.wav,second\na.wav,again\n")
    recipe_rejects = [r.to_dict() for r in get_recipe("folder", metadata="meta.csv").prepare(root)
                      if isinstance(r, Rejection)]
    assert [r["reason"] for r in recipe_rejects] == ["duplicate_id"]

    def no_set(self, res):
        raise AssertionError("the build kept a set of ids")

    from voxbox.sources.corpora import base

    monkeypatch.setattr(base._PrepareRun, "dedupe", no_set)
    out = tmp_path / "out"
    assert main(["build", "--corpus", "folder", "--root", str(root), "-O", "metadata=meta.csv", "--stages", "",
                 "-j", "1", "-o", str(out), "-q"]) == 0
    ds = open_dataset(out)
    assert sorted(r.text for r in ds.records("parquet")) == ["first", "second"]
    assert [r.to_dict() for r in ds.rejects()] == recipe_rejects


def test_rejects_sort_equals_a_stable_sort(tmp_path):
    from voxbox.shards.writer import RejectsSort, rejects_sort_key

    rng = random.Random(7)
    rejs = [Rejection(rng.choice(["prepare", "shard"]), f"p{rng.randrange(5)}.wav",
                      rng.choice(["missing_audio", "duplicate_index"]),
                      rng.choice([None, "c_1", "c_2", "c_3"]), f"detail {i}") for i in range(300)]
    s = RejectsSort(tmp_path / "r", run_items=8)
    for r in rejs:
        s.add(r)
    assert len(s.sort.runs) > 10
    expected = [json.dumps(r.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n"
                for r in sorted(rejs, key=rejects_sort_key)]  # ties keep their order (stable)
    assert list(s) == expected
    s.write(tmp_path / "rejects.jsonl")
    assert (tmp_path / "rejects.jsonl").read_text() == "".join(expected)
    assert sum(s.by_reason.values()) == 300
    s.close()
