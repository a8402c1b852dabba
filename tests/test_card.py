"""The generated dataset card: a YAML header the Hub reads, and a truthful body."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from test_publish import make_built_dataset

from voxbox.release.card import FIELD_DESCRIPTIONS, hub_license, hub_split, render_card, size_category, split_front_matter
from voxbox.dataset.reader import open_dataset
from voxbox.dataset.stats import collect_stats


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return make_built_dataset(tmp_path_factory.mktemp("card") / "built")


@pytest.fixture(scope="module")
def card(built):
    ds = open_dataset(built)
    return render_card(ds, collect_stats(ds, progress=False), repo_id="alice/tiny")


def test_yaml_header_parses_and_matches_the_data(card, built):
    meta, body = split_front_matter(card)
    # What the Hub's own parser sees, too.
    from huggingface_hub import DatasetCard

    hub_meta = DatasetCard(card).data.to_dict()
    assert hub_meta["license"] == meta["license"] == ["apache-2.0", "cc-by-4.0"]
    assert meta["language"] == ["en", "zh"]
    assert meta["task_categories"] == ["text-to-speech"]
    assert meta["size_categories"] == ["n<1K"]
    assert meta["pretty_name"] == "tiny"
    assert body.lstrip().startswith("# tiny")


def test_configs_publish_each_corpus_split_as_a_hub_split(card, built):
    meta, _ = split_front_matter(card)
    configs = {c["config_name"]: c for c in meta["configs"]}
    assert set(configs) == {"default", "webdataset"}
    assert configs["default"].get("default") is True
    ds = open_dataset(built)
    for name, fmt in (("default", "parquet"), ("webdataset", "webdataset")):
        specs = configs[name]["data_files"]
        assert [s["split"] for s in specs] == ["train", "test"]  # the recipe's test row is not in train
        listed = []
        for spec in specs:
            paths = spec["path"] if isinstance(spec["path"], list) else [spec["path"]]
            listed += paths
            for p in paths:  # every record of a split's files belongs to that split
                assert (built / p).is_file()
                (shard,) = [s for s in ds.shards if s["files"][fmt]["path"] == p]
                assert hub_split(shard["split"]) == spec["split"]
        for split in ("train", "test"):  # the reader selects the same files and records
            assert [str(f.relative_to(built)) for f in ds.shard_files(fmt, split)] == \
                next(s["path"] for s in specs if s["split"] == split)
            recs = list(ds.records(fmt, split=split))
            assert recs and {r.split for r in recs} == {split}
        assert sorted(listed) == sorted(str(p.relative_to(built)) for p in ds.shard_files(fmt))


def test_hub_split_names():
    assert [hub_split(s) for s in ("train", "dev", "valid", "test", None, "test-clean")] == \
        ["train", "validation", "validation", "test", "train", "test_clean"]


def test_body_statistics_fields_and_licenses(card, built):
    ds = open_dataset(built)
    recs = list(ds.records())
    _, body = split_front_matter(card)
    n_vctk = sum(r.corpus == "vctk" for r in recs)
    n_aishell = sum(r.corpus == "aishell3" for r in recs)
    assert n_vctk and n_aishell
    assert f"| vctk | {n_vctk} |" in body and f"| aishell3 | {n_aishell} |" in body
    for level in ("very_low", "low", "moderate", "high", "very_high"):
        count = sum(r.pitch_level == level for r in recs)
        assert f"| {level} | {count} |" in body
    assert f"| female | {sum(r.gender == 'female' for r in recs)} |" in body
    # Every column of the published Parquet is described (catches schema drift).
    columns = pq.read_schema(ds.shard_files("parquet")[0]).names
    assert set(columns) <= set(FIELD_DESCRIPTIONS)
    for col in columns:
        assert f"| `{col}` |" in body
    # Per-corpus license and attribution.
    assert "CC BY 4.0" in body and "Apache-2.0" in body and "`cc-by-4.0`" in body
    # Build provenance and limitations (predicted vs native labels).
    assert "voxbox" in body and "numpy" in body
    n_pred = sum(r.gender_source == "predicted" for r in recs)
    assert f"predicted {n_pred}" in body and f"native {len(recs) - n_pred}" in body
    assert "annotate: audio_too_short | 2" in body
    assert 'load_dataset("alice/tiny", split="train")' in body


def test_card_is_deterministic(built):
    ds = open_dataset(built)
    a = render_card(ds, collect_stats(ds, progress=False), repo_id="x/y")
    b = render_card(open_dataset(built), collect_stats(open_dataset(built), progress=False), repo_id="x/y")
    assert a == b


def test_unknown_license_is_other_with_a_name(tmp_path):
    import numpy as np
    import soundfile as sf

    from voxbox.release.card import card_metadata
    from voxbox.record import Utterance
    from voxbox.shards import write_dataset

    sf.write(tmp_path / "a.wav", np.zeros(1600, dtype=np.float32), 16000)
    rec = Utterance(index="mine_0000000000000001", corpus="mine", source_path="a.wav", corpus_root=str(tmp_path),
                    duration=0.1, language="ja", license="research use only, see terms")
    write_dataset([rec], tmp_path / "b", name="mine")
    ds = open_dataset(tmp_path / "b")
    meta = card_metadata(ds, collect_stats(ds, progress=False))
    assert meta["license"] == "other" and meta["license_name"]
    assert meta["language"] == ["ja"]
    assert [c["config_name"] for c in meta["configs"]] == ["default", "webdataset"]
    yaml.safe_load(yaml.safe_dump(meta))


@pytest.mark.parametrize("text,expected", [
    ("CC BY 4.0", "cc-by-4.0"), ("CC BY-NC 4.0", "cc-by-nc-4.0"), ("CC BY-NC-SA 4.0", "cc-by-nc-sa-4.0"),
    ("cc-by-sa-4.0", "cc-by-sa-4.0"), ("Apache-2.0", "apache-2.0"), ("Apache License 2.0", "apache-2.0"),
    ("ODbL 1.0 + DbCL 1.0", "odbl"), ("MIT", "mit"), ("CC0", "cc0-1.0"), ("ODC-By", "odc-by"),
    ("non-commercial research only", "other"), ("", "other"), (None, "other"),
])
def test_hub_license(text, expected):
    assert hub_license(text) == expected


def test_size_category():
    assert size_category(0) == "n<1K"
    assert size_category(999) == "n<1K"
    assert size_category(1000) == "1K<n<10K"
    assert size_category(15_629_241) == "10M<n<100M"


def test_single_format_and_redacted_command(tmp_path):
    import json

    import numpy as np
    import soundfile as sf

    from voxbox.release.card import card_metadata
    from voxbox.record import Utterance
    from voxbox.shards import write_dataset

    sf.write(tmp_path / "a.wav", np.zeros(1600, dtype=np.float32), 16000)
    rec = Utterance(index="vctk_0000000000000001", corpus="vctk", source_path="a.wav", corpus_root=str(tmp_path),
                    duration=0.1, language="en", license="CC BY 4.0")
    write_dataset([rec], tmp_path / "w", name="w", formats=("webdataset",))
    prov = tmp_path / "w" / "provenance.json"
    data = json.loads(prov.read_text())
    data["command"] = ["voxbox", "build", "--token", "hf_SecretSecretSecret123", "--out", "w"]
    prov.write_text(json.dumps(data))
    ds = open_dataset(tmp_path / "w")
    stats = collect_stats(ds, progress=False)
    meta = card_metadata(ds, stats)
    assert meta["configs"] == [{"config_name": "default", "data_files": [{"split": "train",
                                                                          "path": "webdataset/*.tar"}],
                                "default": True}]
    text = render_card(ds, stats)
    assert "hf_SecretSecretSecret123" not in text and "--token ***" in text
