"""Training readers: hf_dataset (audio decoded by soundfile) and torch_dataset (WebDataset
shards into a DataLoader, split over ranks and workers without duplicates)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from hub_server import DEFAULT_TOKEN, HubServer
from test_publish import cli_env

from voxbox.dataset import collate, hf_dataset, open_dataset, torch_dataset
from voxbox.errors import VoxboxError
from voxbox.shards import write_dataset
from voxbox.sources.sample_corpus import ROOT as SAMPLE_ROOT

pytest.importorskip("datasets")
# huggingface_hub streams LFS uploads with a call httpx deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Use .content=:DeprecationWarning")


def source_audio(rec_or_row) -> np.ndarray:
    path = rec_or_row["source_path"] if isinstance(rec_or_row, dict) else rec_or_row.source_path
    return sf.read(str(SAMPLE_ROOT / path), dtype="float32")[0]


# ------------------------------------------------------------------------------ hf_dataset

def test_hf_dataset_decodes_audio_with_soundfile_equal_to_the_source(sample):
    ds = hf_dataset(sample, split="test")
    assert len(ds) == 6 and ds.column_names[0] == "audio" and "utt_id" in ds.column_names
    for row in ds:
        audio = row["audio"]
        assert audio["sampling_rate"] == 24000 and audio["array"].dtype == np.float32
        np.testing.assert_array_equal(audio["array"], source_audio(row))  # lossless, sample for sample
    every = hf_dataset(sample)  # all splits: a DatasetDict keyed by Hub split
    assert list(every) == ["test"] and len(every["test"]) == 6
    resampled = hf_dataset(sample, split="test", sampling_rate=16000, streaming=True)
    first = next(iter(resampled))
    assert first["audio"]["sampling_rate"] == 16000
    assert abs(len(first["audio"]["array"]) - len(source_audio(first)) * 2 / 3) <= 1
    with pytest.raises(VoxboxError, match="no split 'train'"):
        hf_dataset(sample, split="train")


def test_hf_dataset_reads_webdataset_only_folders_and_splits(tiny, tmp_path):
    recs = list(open_dataset(tiny).records())
    root = Path(f"{tiny}-src")
    wds_only = tmp_path / "wds"
    write_dataset([r.replace(corpus_root=str(root)) for r in recs], wds_only, name="w", formats=["webdataset"],
                  shard_records=3)
    for folder in (tiny, wds_only):
        train = hf_dataset(folder, split="train")
        test = hf_dataset(folder, split="test")
        assert sorted(train["index"]) == sorted(r.index for r in recs if r.split == "train")
        assert test["index"] == [r.index for r in recs if r.split == "test"]
        row = test[0]
        wav = sf.read(str(root / row["source_path"]), dtype="float32")[0]
        np.testing.assert_array_equal(row["audio"]["array"], wav)
        assert row["global_tokens"] == next(r.global_tokens for r in recs if r.split == "test")


# --------------------------------------------------------------------------- torch_dataset

def indices_seen(source, world_size: int, workers: int, **kwargs) -> Counter:
    seen = Counter()
    for rank in range(world_size):
        ds = torch_dataset(source, rank=rank, world_size=world_size, decode_audio=False, **kwargs)
        loader = DataLoader(ds, batch_size=None, num_workers=workers, collate_fn=lambda s: s)
        got = [s["index"] for s in loader]
        assert got, f"rank {rank} saw nothing"
        seen.update(got)
    return seen


@pytest.mark.slow
def test_two_workers_times_two_ranks_see_every_record_exactly_once(tiny):
    want = {r.index for r in open_dataset(tiny).records()}
    assert len(open_dataset(tiny).shards) == 5
    seen = indices_seen(tiny, world_size=2, workers=2)
    assert set(seen) == want and set(seen.values()) == {1}
    shuffled = indices_seen(tiny, world_size=2, workers=2, shuffle=True, seed=3)
    assert set(shuffled) == want and set(shuffled.values()) == {1}


@pytest.mark.slow
def test_one_shard_feeds_several_workers_without_duplicates(tiny, tmp_path):
    recs = [r.replace(corpus_root=f"{tiny}-src") for r in open_dataset(tiny).records() if r.split == "train"]
    one = tmp_path / "one"
    write_dataset(recs, one, name="one")
    assert len(open_dataset(one).shards) == 1
    seen = indices_seen(one, world_size=3, workers=2)  # 6 readers, 1 shard
    assert set(seen) == {r.index for r in recs} and set(seen.values()) == {1}


def test_samples_carry_decoded_audio_tokens_and_labels(sample, tiny):
    by_index = {r.index: r for r in open_dataset(tiny).records()}
    for s in torch_dataset(tiny, split="test"):
        rec = by_index[s["index"]]
        assert torch.equal(s["global_tokens"], torch.tensor(rec.global_tokens))
        assert torch.equal(s["semantic_tokens"], torch.tensor(rec.semantic_tokens))
        assert s["labels"]["gender"] == rec.gender and s["labels"]["pitch_level"] == rec.pitch_level
        assert s["audio"].shape == (rec.num_samples,) and s["sample_rate"] == 16000
    for s in torch_dataset(sample, split="test"):
        np.testing.assert_array_equal(s["audio"].numpy(), source_audio(s["record"]))
        assert s["global_tokens"] is None and s["record"].null_reasons["global_tokens"] == "not_tokenized"


def test_collate_pads_and_keeps_lengths(tiny):
    loader = DataLoader(torch_dataset(tiny, split="train", sampling_rate=8000), batch_size=4, collate_fn=collate)
    batch = next(iter(loader))
    lens = batch["audio_lens"]
    assert batch["audio"].shape == (4, int(lens.max())) and batch["global_tokens"].shape == (4, 32)
    for i, rec in enumerate(batch["records"]):
        assert int(lens[i]) == round(rec.num_samples / 2)  # 16 kHz -> 8 kHz
        assert torch.all(batch["audio"][i, int(lens[i]):] == 0)
        n = int(batch["semantic_lens"][i])
        assert batch["semantic_tokens"][i, :n].tolist() == rec.semantic_tokens
        assert torch.all(batch["semantic_tokens"][i, n:] == -1)
    assert batch["labels"]["gender"] == [r.gender for r in batch["records"]]


def test_duration_buckets_make_bounded_batches_of_every_record(tiny):
    recs = {r.index: r for r in open_dataset(tiny).records()}
    ds = torch_dataset(tiny, batch_duration=1.5, num_buckets=2, decode_audio=False)
    batches = list(DataLoader(ds, batch_size=None, num_workers=2))
    seen = Counter(i for b in batches for i in b["index"])
    assert set(seen) == set(recs) and set(seen.values()) == {1}
    for b in batches:
        assert sum(b["duration"]) <= 1.5 + 1e-9 or len(b["index"]) == 1
    assert any(len(b["index"]) > 1 for b in batches)


def test_any_fsspec_url_and_clear_errors(tiny):
    import fsspec

    mem = fsspec.filesystem("memory")
    for p in sorted(tiny.rglob("*")):
        if p.is_file():
            mem.pipe(f"/built/{p.relative_to(tiny)}", p.read_bytes())
    got = [s["index"] for s in torch_dataset("memory://built", decode_audio=False)]
    assert got == [r.index for r in open_dataset(tiny).records()]
    with pytest.raises(VoxboxError, match="index.json: not found"):
        torch_dataset("memory://nothing-here")
    with pytest.raises(VoxboxError, match="no split 'validation'"):
        torch_dataset(tiny, split="validation")
    with pytest.raises(VoxboxError, match="rank 2 is not in 0..1"):
        torch_dataset(tiny, rank=2, world_size=2)


@pytest.mark.slow
def test_hub_repo_reads_back_with_both_readers(tiny, tmp_path):
    """Published to a local Hub server: hf:// streams the tars, hf_dataset the Parquet splits."""
    with HubServer() as hub:
        env = cli_env(hub, tmp_path)
        r = subprocess.run([sys.executable, "-m", "voxbox", "publish", str(tiny), "--repo-id", "alice/tiny",
                            "--token", DEFAULT_TOKEN, "-q"], env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        code = (
            "import json, numpy as np\n"
            "from torch.utils.data import DataLoader\n"
            "from voxbox.dataset import hf_dataset, torch_dataset\n"
            "ds = torch_dataset('hf://datasets/alice/tiny', split='train', decode_audio=False)\n"
            "idx = [s['index'] for s in DataLoader(ds, batch_size=None, num_workers=2)]\n"
            "hf = hf_dataset('alice/tiny', split='test')\n"
            "row = hf[0]\n"
            "print(json.dumps({'idx': idx, 'test': list(hf['index']), 'n': len(row['audio']['array']),"
            " 'sr': row['audio']['sampling_rate'], 'sum': float(np.abs(row['audio']['array']).sum())}))\n"
        )
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    recs = list(open_dataset(tiny).records())
    assert sorted(got["idx"]) == sorted(r.index for r in recs if r.split == "train")
    (test,) = [r for r in recs if r.split == "test"]
    wav = sf.read(str(Path(f"{tiny}-src") / test.source_path), dtype="float32")[0]
    assert got["test"] == [test.index] and got["sr"] == 16000 and got["n"] == len(wav)
    assert abs(got["sum"] - float(np.abs(wav).sum())) < 1e-3
