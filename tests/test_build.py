"""voxbox build: pipelines, stages, rejects, refusal of changed inputs, CLI, bad output."""

from __future__ import annotations

import json
import resource
import signal
import subprocess

import pytest
import yaml

from voxbox.build.pipeline import load_pipeline
from voxbox.build.run import build
from voxbox.build.sources import manifest_source
from voxbox.cli import main
from voxbox.dataset.reader import open_dataset
from voxbox.errors import VoxboxError
from voxbox.record import Rejection
from voxbox.manifest import read_manifest, write_manifest

from voxbox_build_fixtures import (make_corpus, shard_bytes, subprocess_env, voxbox_cmd,
                                   write_corpus_manifest, write_pipeline)


@pytest.fixture()
def manifest(tmp_path):
    return write_corpus_manifest(tmp_path, n=10, bad=True, reject_every=4)


def test_default_pipeline_and_overrides(tmp_path):
    pipe = load_pipeline()
    assert [s["stage"] for s in pipe.stages] == ["annotate", "tokenize"]
    assert [s["stage"] for s in pipe.active_stages()] == ["annotate"]
    assert pipe.skipped() == [("tokenize", "no model_dir given")]
    assert pipe.formats == ("webdataset", "parquet") and pipe.audio_format == "flac" and pipe.shard_mb == 500
    model = tmp_path / "model"
    model.mkdir()
    pipe2 = load_pipeline(model_dir=model, device="cuda", shard_mb=10, formats=["parquet"], name="x")
    tok = pipe2.active_stages()[1]
    assert tok["params"] == {"model_dir": str(model.resolve()), "device": "cuda"}
    assert (pipe2.formats, pipe2.shard_mb, pipe2.name) == (("parquet",), 10.0, "x")
    assert pipe2.fingerprint() != pipe.fingerprint()
    # The resolved YAML reloads to the same pipeline.
    f = tmp_path / "resolved.yaml"
    f.write_text(pipe2.to_yaml())
    assert load_pipeline(f).identity() == pipe2.identity()
    assert load_pipeline(stages=[]).active_stages() == []
    with pytest.raises(VoxboxError, match="not in pipeline"):
        load_pipeline(stages=["nope"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages: [{params: {}}]\n")
    with pytest.raises(VoxboxError, match="needs a 'stage' name"):
        load_pipeline(bad)
    with pytest.raises(VoxboxError, match="pipeline file not found"):
        load_pipeline(tmp_path / "missing.yaml")


def test_build_runs_stages_and_collects_rejects(manifest, tmp_path):
    pipe = load_pipeline(write_pipeline(tmp_path / "p.yaml"))
    out = tmp_path / "out"
    index = build(manifest_source(manifest), out, pipe)
    ds = open_dataset(out)
    recs = list(ds.records())
    n_manifest = sum(1 for _ in read_manifest(manifest))
    rejects = list(ds.rejects())
    reasons = sorted((r.stage, r.reason) for r in rejects)
    # 3 texts ask the tiny stage to reject (i = 1, 5, 9); the broken file fails in the
    # stage (unexpected error) since the tiny stage reads the audio.
    assert reasons == [("tiny", "tiny_reject")] * 3 + [("tiny", "unexpected_error")]
    assert len(recs) + len(rejects) == n_manifest
    assert not {r.index for r in recs} & {r.index for r in rejects}
    assert all(r.loudness is not None and len(r.global_tokens) == 32 for r in recs)
    assert index["rejects"]["by_reason"] == {"tiny: tiny_reject": 3, "tiny: unexpected_error": 1}
    assert index["summary"]["pitch_level"]
    assert ds.pipeline["stages"][0]["stage"] == "voxbox_build_fixtures:TinyStage"
    prov = ds.provenance
    assert prov["versions"]["voxbox"] and "pyarrow" in prov["versions"]
    assert not (out / ".work").exists()
    assert index["fingerprint"]["input"] and index["fingerprint"]["pipeline"] == pipe.fingerprint()


def test_prepare_rejects_and_duplicates_are_kept(tmp_path):
    recs = make_corpus(tmp_path / "c", n=4)
    source = [recs[0], recs[1], recs[1], Rejection("prepare", "x.wav", "missing_transcript"), recs[2]]
    pipe = load_pipeline(stages=[], shard_records=2)
    index = build(source, tmp_path / "out", pipe)
    assert index["totals"]["records"] == 3
    assert index["rejects"]["by_reason"] == {"prepare: duplicate_index": 1, "prepare: missing_transcript": 1}


@pytest.mark.slow
def test_rebuild_same_bytes_and_more_workers_same_bytes(manifest, tmp_path):
    pipe = load_pipeline(write_pipeline(tmp_path / "p.yaml"))
    build(manifest_source(manifest), tmp_path / "a", pipe, workers=1)
    build(manifest_source(manifest), tmp_path / "b", pipe, workers=2)
    a, b = shard_bytes(tmp_path / "a"), shard_bytes(tmp_path / "b")
    assert len(a) > 4 and a == b
    # Rerunning on a finished folder skips every shard and changes nothing.
    logs = []
    build(manifest_source(manifest), tmp_path / "a", pipe, log=logs.append)
    assert shard_bytes(tmp_path / "a") == a
    assert any("already finished and verified" in m for m in logs)


def test_changed_pipeline_or_input_refused_unless_force(manifest, tmp_path):
    out = tmp_path / "out"
    p1 = load_pipeline(write_pipeline(tmp_path / "p.yaml"))
    build(manifest_source(manifest), out, p1)
    p2 = load_pipeline(write_pipeline(tmp_path / "p2.yaml", audio_format="original"))
    with pytest.raises(VoxboxError, match="different pipeline.*--force"):
        build(manifest_source(manifest), out, p2)
    recs = list(read_manifest(manifest))
    with pytest.raises(VoxboxError, match="different input"):
        build(recs[:-1], out, p1)
    build(manifest_source(manifest), out, p2, force=True)
    ds = open_dataset(out)
    assert ds.audio_format == "original"
    assert all(ext == "wav" or ext == "flac" for _, _, ext in ds.samples())
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(VoxboxError, match="not a voxbox build"):
        build(manifest_source(manifest), other, p1)


def test_stage_batch_failure_is_retried_per_record(tmp_path):
    recs = make_corpus(tmp_path / "c", n=6)
    recs[2] = recs[2].replace(text="BOOM here")
    pipe_file = write_pipeline(tmp_path / "p.yaml",
                               stages=[{"stage": "voxbox_build_fixtures:TinyBatchStage", "params": {}}])
    index = build(recs, tmp_path / "out", load_pipeline(pipe_file))
    assert index["totals"]["records"] == 5
    rej = list(open_dataset(tmp_path / "out").rejects())
    assert [(r.stage, r.reason, r.index) for r in rej] == [("tinybatch", "unexpected_error", recs[2].index)]
    assert "boom" in rej[0].detail


def test_cli_build_and_validate(manifest, tmp_path):
    out = tmp_path / "out"
    pfile = write_pipeline(tmp_path / "p.yaml")
    assert main(["build", "--manifest", str(manifest), "--out", str(out), "--pipeline", str(pfile),
                 "--workers", "1", "--name", "cli", "--format", "webdataset"]) == 0
    ds = open_dataset(out)
    assert ds.name == "cli" and ds.formats == ["webdataset"]
    assert yaml.safe_load((out / "pipeline.yaml").read_text())["name"] == "cli"
    assert main(["validate", str(out)]) == 0
    # Exactly one source.
    assert main(["build", "--out", str(out)]) == 1


def test_cli_tokenize_skipped_message_and_unknown_stage(manifest, tmp_path, capsys):
    pfile = tmp_path / "p.yaml"
    pfile.write_text(yaml.safe_dump({"name": "s", "stages": [
        {"stage": "tokenize", "requires": "model_dir", "params": {"model_dir": None}}]}))
    assert main(["build", "--manifest", str(manifest), "--out", str(tmp_path / "o"), "--pipeline", str(pfile),
                 "--workers", "1"]) == 0
    err = capsys.readouterr().err
    assert "stage tokenize skipped: no model_dir given" in err
    pfile.write_text(yaml.safe_dump({"name": "s", "stages": [{"stage": "no_such_stage"}]}))
    assert main(["build", "--manifest", str(manifest), "--out", str(tmp_path / "o2"), "--pipeline", str(pfile)]) == 1
    assert "unknown stage 'no_such_stage'" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_build_libritts_with_real_stages(shared, tiny_bicodec, tmp_path, capsys):
    """prepare (libritts recipe) -> annotate -> tokenize (tiny BiCodec) -> shards -> validate."""
    root = shared / "data" / "real-speech" / "libritts-mini"
    out = tmp_path / "out"
    assert main(["build", "--corpus", "libritts", "--root", str(root), "--out", str(out), "--model-dir",
                 str(tiny_bicodec), "--workers", "1", "--name", "libritts"]) == 0
    summary = capsys.readouterr().out
    assert "6 records" in summary and "gender: female 3, male 3" in summary
    ds = open_dataset(out)
    recs = list(ds.records())
    assert len(recs) == 6 and all(r.corpus == "libritts" and r.text for r in recs)
    for r in recs:
        assert r.pitch is not None and r.speed is not None and r.syllable_num and r.duration
        assert len(r.global_tokens) == 32 and len(r.semantic_tokens) > 40
    assert [s["stage"] for s in ds.pipeline["stages"]] == ["annotate", "tokenize"]
    assert "skipped" not in ds.pipeline["stages"][1]
    assert ds.index["summary"]["speed_level"]
    assert main(["validate", str(out)]) == 0


def test_unwritable_output_is_a_clear_error(manifest, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(VoxboxError, match="file/out"):
        build(manifest_source(manifest), blocker / "out", load_pipeline(stages=[]))


def _limit_file_size(limit):
    # Writes past `limit` bytes fail with EFBIG instead of killing the process (SIGXFSZ
    # ignored): the same code path as a full disk.
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.slow
def test_disk_full_stops_cleanly_and_resumes(tmp_path):
    manifest = write_corpus_manifest(tmp_path, n=16)
    pfile = write_pipeline(tmp_path / "p.yaml", shard_mb=1.0, shard_records=3)
    args = ["build", "--manifest", str(manifest), "--pipeline", str(pfile), "--workers", "1"]
    ref = tmp_path / "ref"
    assert subprocess.run(voxbox_cmd(*args, "--out", str(ref)), env=subprocess_env()).returncode == 0
    sizes = [max(f["bytes"] for f in s["files"].values()) for s in json.loads((ref / "index.json").read_text())["shards"]]
    limit = sizes[0] + 1  # the first shard fits, a larger later one does not
    assert max(sizes[1:]) > limit
    out = tmp_path / "out"
    r = subprocess.run(voxbox_cmd(*args, "--out", str(out)), env=subprocess_env(),
                       preexec_fn=_limit_file_size(limit), capture_output=True, text=True)
    assert r.returncode == 1, r.stderr
    assert "error:" in r.stderr and "rerun to resume" in r.stderr and "Traceback" not in r.stderr, r.stderr
    journal = [json.loads(x) for x in (out / "journal.jsonl").read_text().splitlines()]
    finished = [e for e in journal if e["kind"] == "shard"]
    assert finished, "some shards fit under the limit"
    for e in finished:  # finished shards are intact
        for f in e["files"].values():
            assert (out / f["path"]).read_bytes() == (ref / f["path"]).read_bytes()
    assert subprocess.run(voxbox_cmd(*args, "--out", str(out)), env=subprocess_env()).returncode == 0
    assert not list(out.rglob("*.partial"))
    assert shard_bytes(out) == shard_bytes(ref)


def test_bad_options_fail_before_any_work(manifest, tmp_path, tiny_bicodec):
    pipe = load_pipeline(write_pipeline(tmp_path / "p.yaml"))
    out = tmp_path / "out"
    for kw, msg in (({"workers": 0}, "workers must be at least 1"), ({"engine": "spark"}, "unknown engine")):
        with pytest.raises(VoxboxError, match=msg):
            build(manifest_source(manifest), out, pipe, **kw)
        assert not out.exists()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(VoxboxError, match="exists and is not a folder"):
        build(manifest_source(manifest), tmp_path / "afile", pipe)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(VoxboxError, match="the input has no usable records"):
        build([], out, pipe)
    with pytest.raises(VoxboxError, match=r"no usable records \(1 rejected: 1 unreadable_audio\)"):
        build([Rejection("prepare", "a.wav", "unreadable_audio")], out, pipe)
    assert not (out / "index.json").exists()
    # A model folder with a missing or truncated file is found before the corpus is read,
    # not by a worker halfway through.
    model = tmp_path / "model"
    for sub in ("BiCodec", "wav2vec2-large-xlsr-53"):
        (model / sub).mkdir(parents=True)
        for f in (tiny_bicodec / sub).iterdir():
            (model / sub / f.name).symlink_to(f)
    (model / "config.yaml").symlink_to(tiny_bicodec / "config.yaml")
    weights = model / "BiCodec" / "model.safetensors"
    weights.unlink()
    weights.write_bytes((tiny_bicodec / "BiCodec" / "model.safetensors").read_bytes()[:100_000])

    def never_read():
        raise AssertionError("the input was read before the model folder was checked")
        yield

    with pytest.raises(VoxboxError, match="not a complete safetensors file"):
        build(never_read(), tmp_path / "o2", load_pipeline(model_dir=model))
    weights.unlink()
    with pytest.raises(VoxboxError, match="lacks BiCodec/model.safetensors"):
        build(never_read(), tmp_path / "o2", load_pipeline(model_dir=model))


def test_a_run_that_finished_no_shard_does_not_block_the_corrected_command(manifest, tmp_path):
    from voxbox.shards import index as ix

    out = tmp_path / "out"
    out.mkdir()
    # What a run that died after starting (say, on a wrong model folder) leaves behind.
    ix.Journal(out / ix.JOURNAL_NAME).append({"kind": "start", "name": "synth",
                                              "fingerprint": {"input": "other", "pipeline": "other"}})
    index = build(manifest_source(manifest), out, load_pipeline(write_pipeline(tmp_path / "p.yaml")))
    assert index["totals"]["records"] > 0
    assert main(["validate", str(out)]) == 0


# ------------------------------------------------------------------------------ issue 11

def test_audio_changed_in_place_is_refused_and_force_redoes_exactly_its_shard(tmp_path):
    # Re-processing a file at the same length used to resume into the shards of the old
    # audio: the input fingerprint saw only the records.
    import soundfile as sf

    recs = make_corpus(tmp_path / "c", n=6)
    manifest = tmp_path / "m.jsonl"
    write_manifest(manifest, recs)
    pipe = load_pipeline(write_pipeline(tmp_path / "p.yaml", shard_records=2))
    out = tmp_path / "out"
    build(manifest_source(manifest), out, pipe)
    before = shard_bytes(out)
    victim = recs[2]                                  # its shard: sorted by index, 2 per shard
    path = victim.audio_path
    y, sr = sf.read(path, dtype="int16")
    sf.write(path, (y // 2).astype("int16"), sr, subtype="PCM_16")   # same length, new samples
    with pytest.raises(VoxboxError, match="different input.*--force to rebuild it \\(only the shards whose "
                                          "input changed"):
        build(manifest_source(manifest), out, pipe)
    logs = []
    build(manifest_source(manifest), out, pipe, force=True, log=logs.append)
    after = shard_bytes(out)
    changed = sorted({k.split("/")[-1] for k in after if after[k] != before[k]} - {"index.json"})
    order = sorted(r.index for r in recs)
    k = order.index(victim.index) // 2
    assert changed == [f"{pipe.name}-{k:06d}.parquet", f"{pipe.name}-{k:06d}.tar"]
    assert [m for m in logs if m.startswith("shard ")] == [f"shard {k}: its input (records or audio) changed "
                                                           "since it was built; redoing it"]
    fresh = tmp_path / "fresh"
    build(manifest_source(manifest), fresh, pipe)
    assert shard_bytes(fresh) == after             # as if built from the changed corpus at once


@pytest.mark.slow
def test_out_inside_root_is_not_read_as_corpus_files(tmp_path):
    # The build used to see its own work files and shards as corpus files; the identical
    # rerun was then refused as "different input".
    import soundfile as sf

    from adversarial import speech_like
    from voxbox.build.sources import corpus_source

    root = tmp_path / "corpus"
    root.mkdir()
    for i in range(3):
        sf.write(root / f"c{i}.wav", speech_like(0.5, seed=i), 16000, subtype="PCM_16")
        (root / f"c{i}.txt").write_text(f"clip {i}")
    out = root / "built"
    pipe = load_pipeline(write_pipeline(tmp_path / "p.yaml"))
    first = build(corpus_source("folder", root=root, ignore=(out,)), out, pipe)
    logs = []
    again = build(corpus_source("folder", root=root, ignore=(out,)), out, pipe, log=logs.append)
    assert first["totals"]["records"] == again["totals"]["records"] == 3
    assert first["rejects"]["count"] == 0 and any("already finished" in m for m in logs)
    r = subprocess.run(voxbox_cmd("build", "--corpus", "folder", "--root", str(root), "--out", str(out),
                                  "--pipeline", str(tmp_path / "p.yaml"), "-j", "1"),
                       env=subprocess_env(), capture_output=True, text=True)
    assert r.returncode == 0 and "already finished and verified" in r.stderr, r.stderr


@pytest.mark.slow
def test_a_second_build_into_the_same_folder_is_refused(manifest, tmp_path):
    from adversarial import busy, held_lock

    out = tmp_path / "out"
    with held_lock(out) as pid:
        r = subprocess.run(voxbox_cmd("build", "--manifest", str(manifest), "--out", str(out), "--stages", ""),
                           env=subprocess_env(), capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.strip() == f"error: {busy(out, pid)}"
    assert not (out / "index.json").exists()
    r = subprocess.run(voxbox_cmd("build", "--manifest", str(manifest), "--out", str(out), "--stages", ""),
                       env=subprocess_env(), capture_output=True, text=True)
    assert r.returncode == 0 and f"left by pid {pid}" in r.stderr, r.stderr


@pytest.mark.slow
def test_absolute_source_paths_are_refused_unless_allowed(tmp_path):
    # With --stages '' and --audio-format original, an absolute source_path copied any
    # readable file (a token file, say) into the shards.
    secret = tmp_path / "secret" / "token.wav"
    secret.parent.mkdir()
    secret.write_bytes(b"hf_not_audio_at_all")
    recs = make_corpus(tmp_path / "c", n=3)
    evil = recs[0].replace(index="synth_evil", source_path=str(secret))
    climb = recs[1].replace(index="synth_climb", source_path="../secret/token.wav")
    manifest = tmp_path / "m.jsonl"
    write_manifest(manifest, recs + [evil, climb])
    args = ["build", "--manifest", str(manifest), "--stages", "", "--audio-format", "original", "-j", "1"]
    r = subprocess.run(voxbox_cmd(*args, "--out", str(tmp_path / "out")), env=subprocess_env(),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    ds = open_dataset(tmp_path / "out")
    assert all(b"hf_not_audio" not in audio for _, audio, _ in ds.samples())
    rej = {x.index: x for x in ds.rejects()}
    assert rej["synth_evil"].reason == rej["synth_climb"].reason == "source_outside_root"
    assert "--allow-absolute-paths" in rej["synth_evil"].detail
    r = subprocess.run(voxbox_cmd(*args, "--out", str(tmp_path / "allowed"), "--allow-absolute-paths"),
                       env=subprocess_env(), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert {x.index for x in open_dataset(tmp_path / "allowed").records()} >= {"synth_evil", "synth_climb"}
