"""`voxbox train sparktts` on a tiny random Qwen2 + the tiny BiCodec fixture, on CPU."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("peft")
pytest.importorskip("accelerate")

from spark_tokenize import prompts as P  # noqa: E402
from voxbox.errors import VoxboxError  # noqa: E402
from voxbox.sparktts import train_data as D  # noqa: E402
from voxbox.sparktts.train import TrainConfig, check_resume, train_sparktts  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from tiny_sparktts import TEXTS, build_tiny_sparktts, tiny_training_dataset  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_bicodec):
    # A wider init than transformers' 0.02 so a short run can memorise (see build_llm).
    return build_tiny_sparktts(tmp_path_factory.mktemp("sparktts") / "tiny", tiny_bicodec, init_std=0.3)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """2 training records + 1 validation record (split test): 4 + 2 examples."""
    return tiny_training_dataset(tmp_path_factory.mktemp("train-audio"), tmp_path_factory.mktemp("train-built"),
                                 n_train=2, n_val=1, sem_len=6)


@pytest.fixture(scope="module")
def tokenizer(model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_dir / "LLM"))


def _cfg(model_dir, out, **kw) -> TrainConfig:
    base = dict(model_dir=str(model_dir), out=str(out), batch_tokens=512, max_tokens=512, grad_accum=1,
                device="cpu", dtype="float32", save_steps=1000, logging_steps=5, eval_control=False)
    base.update(kw)
    return TrainConfig(**base)


# ------------------------------------------------------------------------------------
# Data: examples, mix, packing
# ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_examples_from_built_and_export_are_the_same(built, tokenizer, tmp_path):
    from voxbox.sparktts.export import export_sparktts

    table, summary = D.load_examples([built], tokenizer, D.LoadOptions())
    assert summary["train"]["tts"]["examples"] == 2 and summary["train"]["controllable_tts"]["examples"] == 2
    assert summary["validation"]["tts"]["examples"] == 1  # split "test" is validation by default
    assert sorted(zip(table.index, table.task.tolist(), table.val.tolist())) == [
        ("t_000", 0, False), ("t_000", 1, False), ("t_001", 0, False), ("t_001", 1, False),
        ("t_002", 0, True), ("t_002", 1, True)]
    # Ids are the tokenizer's encoding of export's prompt + target, the prompt first.
    from voxbox.dataset.reader import open_dataset

    rec = next(r for r in open_dataset(built).records() if r.index == "t_000")
    prompt, target = P.control_prompt(TEXTS[0], "male", "low", "moderate"), P.control_target(
        170, 3, rec.global_tokens, rec.semantic_tokens)
    seq, n_prompt = table.example([i for i in range(len(table)) if (table.index[i], table.task[i]) == ("t_000", 1)][0])
    assert list(seq) == tokenizer([prompt + target], add_special_tokens=False)["input_ids"][0]
    assert n_prompt == len(tokenizer([prompt], add_special_tokens=False)["input_ids"][0])
    assert seq[n_prompt] == P.token_id("<|start_acoustic_token|>") and seq[-1] == P.IM_END_ID

    export_sparktts(built, tmp_path / "exp", fmt="parquet")
    from_export, s2 = D.load_examples([tmp_path / "exp"], tokenizer, D.LoadOptions())
    # One source of prompts and targets: the same examples (the export orders them by split).
    def content(t):
        return sorted((t.index[i], int(t.task[i]), bool(t.val[i]), int(t.prompt_len[i]), t.example(i)[0].tolist())
                      for i in range(len(t)))

    assert content(from_export) == content(table)
    export_sparktts(built, tmp_path / "exp-text", style="text")  # one text column per example
    from_text, _ = D.load_examples([tmp_path / "exp-text"], tokenizer, D.LoadOptions())
    assert content(from_text) == content(table)
    assert s2["sources"][0]["kind"] == "export"

    # Length cap counted as a skip; a hold-out fraction moves whole records (both kinds).
    short, s3 = D.load_examples([built], tokenizer, D.LoadOptions(max_tokens=60, tasks=("tts",)))
    assert s3["sources"][0]["skipped"] == {} and len(short) == 3
    capped, s4 = D.load_examples([built], tokenizer, D.LoadOptions(max_tokens=60))
    assert s4["sources"][0]["skipped"]["controllable_tts"] == {"over_max_tokens": 3}
    held, _ = D.load_examples([built], tokenizer, D.LoadOptions(val_splits=(), val_fraction=0.5))
    by_rec = {}
    for i, v in zip(held.index, held.val):
        by_rec.setdefault(i, set()).add(bool(v))
    assert all(len(v) == 1 for v in by_rec.values())
    assert [D.is_held_out(i, 0.5) for i in sorted(by_rec)] == [by_rec[i].pop() for i in sorted(by_rec)]


def test_export_inputs_are_checked(built, tokenizer, tmp_path):
    from voxbox.sparktts.export import export_sparktts

    export_sparktts(built, tmp_path / "exp")
    shard = tmp_path / "exp" / "sparktts-train-000000.jsonl"
    shard.write_text(shard.read_text().replace("Hello", "Jello"))
    with pytest.raises(VoxboxError, match="checksum differs"):
        D.load_examples([tmp_path / "exp"], tokenizer, D.LoadOptions())
    # A hand-made export: rows without a target or a known task are counted, not trained.
    hand = tmp_path / "hand"
    hand.mkdir()
    good = json.loads(shard.read_text().splitlines()[0])
    rows = [good, dict(good, target=""), dict(good, task="asr"), {"index": "x"}]
    (hand / "sparktts-train-000000.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (hand / "summary.json").write_text(json.dumps({"files": [{"path": "sparktts-train-000000.jsonl"}]}))
    table, summary = D.load_examples([hand], tokenizer, D.LoadOptions())
    assert len(table) == 1 and summary["sources"][0]["skipped"] == {"tts": {"bad_row": 1}, "unknown": {"bad_row": 2}}
    (hand / "summary.json").write_text(json.dumps({"files": [{"path": "../escape.jsonl"}]}))
    with pytest.raises(VoxboxError, match="is missing"):
        D.load_examples([hand], tokenizer, D.LoadOptions())


def _toy_table(lengths, tasks, prompt=2):
    ids = np.concatenate([np.arange(n, dtype=np.int32) + 1000 * k for k, n in enumerate(lengths)])
    return D.ExampleTable(ids, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                          np.full(len(lengths), prompt, np.int32), np.asarray(tasks, np.int8),
                          np.zeros(len(lengths), bool), [f"r{k}" for k in range(len(lengths))])


def test_mix_shares_epochs_and_packing():
    assert D.parse_mix(None) is None and D.parse_mix("natural") is None
    assert D.parse_mix("tts=1,controllable_tts=3") == {"tts": 0.25, "controllable_tts": 0.75}
    assert D.parse_mix("controllable_tts=2,tts=0") == {"controllable_tts": 1.0}
    for bad, msg in (("tts", "KIND=WEIGHT"), ("asr=1", "KIND=WEIGHT"), ("tts=x", "not a number"),
                     ("tts=-1", ">= 0"), ("tts=0", "above 0")):
        with pytest.raises(VoxboxError, match=msg):
            D.parse_mix(bad)

    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 60, 40)
    table = _toy_table(lengths, [0] * 30 + [1] * 10)
    natural = D.epoch_order(table, None, seed=3, epoch=0)
    assert sorted(natural) == list(range(40))
    assert list(D.epoch_order(table, None, 3, 0)) == list(natural)  # deterministic
    assert list(D.epoch_order(table, None, 3, 1)) != list(natural)  # reshuffled per epoch
    mixed = D.epoch_order(table, {"tts": 0.25, "controllable_tts": 0.75}, 3, 0)
    assert len(mixed) == 40 and (table.task[mixed] == 0).sum() == 10 and (table.task[mixed] == 1).sum() == 30
    ctl = mixed[table.task[mixed] == 1]
    assert sorted(set(ctl)) == list(range(30, 40))  # every controllable example 3 times
    assert all((ctl == i).sum() == 3 for i in range(30, 40))

    batches = D.pack(natural, lengths, budget=100)
    assert sorted(np.concatenate(batches)) == list(range(40))  # every example exactly once
    assert all(lengths[b].sum() <= 100 for b in batches)
    assert sum(lengths) / (100 * len(batches)) > 0.8  # first fit over open batches fills them well
    plan = D.make_plan(table, None, 100, seed=3, epochs=3, max_batches=None)
    assert len(plan.epoch_starts) == 3 and plan.epoch_at(plan.epoch_starts[1]) == 1.0
    capped = D.make_plan(table, None, 100, seed=3, epochs=None, max_batches=len(batches) * 2 + 1)
    assert len(capped.batches) == len(batches) * 2 + 1 and len(capped.epoch_starts) == 3
    assert [list(b) for b in capped.batches[:len(batches)]] == [list(b) for b in plan.batches[:len(batches)]]


def test_collate_masks_prompts_and_restarts_positions():
    table = _toy_table([5, 3], [0, 1], prompt=2)
    b = D.collate(table, [1, 0])
    assert b["input_ids"].tolist() == [[1000, 1001, 1002, 0, 1, 2, 3, 4]]
    assert b["labels"].tolist() == [[-100, -100, 1002, -100, -100, 2, 3, 4]]
    assert b["position_ids"].tolist() == [[0, 1, 2, 0, 1, 2, 3, 4]]
    assert "attention_mask" not in b


@pytest.mark.slow
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_batch_gives_the_same_logits_and_loss_as_unpacked(model_dir, built, tokenizer, attn):
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_dir / "LLM"), attn_implementation=attn).eval()
    table, _ = D.load_examples([built], tokenizer, D.LoadOptions())
    ids = [0, 1, 2, 3]
    batch = D.collate(table, ids)
    with torch.no_grad():
        out = model(**batch, use_cache=False)
        start, ce_sum, n_targets = 0, 0.0, 0
        for i in ids:
            seq, n_prompt = table.example(i)
            alone = model(input_ids=torch.from_numpy(seq.astype(np.int64))[None], use_cache=False).logits[0]
            packed = out.logits[0, start:start + len(seq)]
            torch.testing.assert_close(packed, alone, atol=1e-5, rtol=1e-5)
            # Loss counts targets only: position t predicts id t + 1, from the last prompt id on.
            tgt = torch.from_numpy(seq[n_prompt:].astype(np.int64))
            ce_sum += float(F.cross_entropy(alone[n_prompt - 1:-1], tgt, reduction="sum"))
            n_targets += len(tgt)
            start += len(seq)
    assert float(out.loss) == pytest.approx(ce_sum / n_targets, rel=1e-5)


# ------------------------------------------------------------------------------------
# Options, folders, resume bookkeeping
# ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_bad_options_and_folders_fail_before_any_work(model_dir, built, tmp_path):
    cases = [
        (dict(batch_tokens=0), "--batch-tokens must be at least 1"),
        (dict(max_tokens=600), "longer than --batch-tokens"),
        (dict(lr=0.0), "--lr must be > 0"),
        (dict(codec_files="move"), "--codec-files: unknown value"),
        (dict(eval_control=True, eval_levels=("loud",)), "--eval-levels: unknown level"),
        (dict(resume=True, overwrite=True), "give one"),
        (dict(val_fraction=1.5), "fractions"),
    ]
    for kw, msg in cases:
        with pytest.raises(VoxboxError, match=msg):
            train_sparktts([built], _cfg(model_dir, tmp_path / "o", **kw))
    with pytest.raises(VoxboxError, match="official layout: missing"):
        train_sparktts([built], _cfg(tmp_path, tmp_path / "o"))
    with pytest.raises(VoxboxError, match="neither a built dataset"):
        train_sparktts([tmp_path], _cfg(model_dir, tmp_path / "o"))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("x")
    with pytest.raises(VoxboxError, match="is not empty"):
        train_sparktts([built], _cfg(model_dir, tmp_path / "full"))
    with pytest.raises(VoxboxError, match="did not write"):
        train_sparktts([built], _cfg(model_dir, tmp_path / "full", overwrite=True))
    with pytest.raises(VoxboxError, match="must not be the model folder"):
        train_sparktts([built], _cfg(model_dir, model_dir / "sub"))
    with pytest.raises(VoxboxError, match="asks for controllable_tts but .* over_max_tokens 3"):
        train_sparktts([built], _cfg(model_dir, tmp_path / "o", mix="controllable_tts=1", max_tokens=60))
    assert not (tmp_path / "o").exists()  # nothing written by a failed start
    assert (tmp_path / "full" / "mine.txt").read_text() == "x"


def test_resume_refuses_other_settings_and_skips_broken_checkpoints(tmp_path):
    from voxbox.sparktts.train_loop import last_checkpoint

    (tmp_path / "training").mkdir()
    run = {"lr": 0.1, "seed": 0, "data_fingerprint": "abc", "inputs": ["a"]}
    check_resume(tmp_path, run)
    check_resume(tmp_path, dict(run, device="cuda"))  # the device may change
    with pytest.raises(VoxboxError, match="differ from the run being resumed: lr, data_fingerprint"):
        check_resume(tmp_path, dict(run, lr=0.2, data_fingerprint="x"))

    ck = tmp_path / "checkpoints"
    for step, state in ((2, {"global_step": 2}), (4, {"global_step": 4}), (6, None)):
        (ck / f"checkpoint-{step}").mkdir(parents=True)
        if state:
            (ck / f"checkpoint-{step}" / "trainer_state.json").write_text(json.dumps(state))
    (ck / "checkpoint-8").mkdir()
    (ck / "checkpoint-8" / "trainer_state.json").write_text('{"global_st')  # cut short by a kill
    assert last_checkpoint(ck).name == "checkpoint-4"
    assert last_checkpoint(tmp_path / "none") is None


# ------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------

def _tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


@pytest.mark.slow
def test_full_finetune_memorises_and_writes_an_official_folder(model_dir, built, tokenizer, tmp_path, capsys):
    from spark_tokenize.tts import GenerationOptions, SparkTTS
    from voxbox.release.hub import missing_model_files

    out = tmp_path / "new"
    cfg = _cfg(model_dir, out, max_steps=30, lr=3e-2, scheduler="constant_with_warmup", warmup=0.0,
               eval_control=True, eval_text=TEXTS[0], eval_levels=("low", "high"), eval_max_new_tokens=60,
               eval_constrain=True)
    lines = []
    summary = train_sparktts([built], cfg, echo=lines.append)
    assert summary["train_loss"] < 0.1
    assert any(h.get("tokens_per_s", 0) > 0 for h in summary["history"])

    # Greedy decoding of every training prompt gives back its target exactly.
    tts = SparkTTS(out)
    table, _ = D.load_examples([built], tts.tokenizer, D.LoadOptions())
    for i in table.select():
        seq, n_prompt = table.example(i)
        mode = "clone" if D.TASKS[table.task[i]] == "tts" else "control"
        prompt = tts.tokenizer.decode(seq[:n_prompt])
        ids, _ = tts.generate_ids([prompt], mode, GenerationOptions(do_sample=False, max_new_tokens=len(seq)))
        assert ids[0] == list(seq[n_prompt:]), (i, mode)

    # The official layout, the source's config/tokenizer bytes, the source's weight names/shapes/dtypes.
    assert missing_model_files(out) == []
    src, new = _tensors(model_dir / "LLM" / "model.safetensors"), _tensors(out / "LLM" / "model.safetensors")
    assert {k: (v.shape, v.dtype) for k, v in src.items()} == {k: (v.shape, v.dtype) for k, v in new.items()}
    assert not all(torch.equal(src[k], new[k]) for k in src)
    assert sorted(p.name for p in (out / "LLM").iterdir()) == sorted(p.name for p in (model_dir / "LLM").iterdir())
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        assert (out / "LLM" / name).read_bytes() == (model_dir / "LLM" / name).read_bytes()
    assert not (out / "BiCodec").is_symlink()  # copied (the default)
    assert (out / "BiCodec" / "model.safetensors").read_bytes() == (model_dir / "BiCodec" / "model.safetensors").read_bytes()
    assert (out / "config.yaml").read_bytes() == (model_dir / "config.yaml").read_bytes()
    assert not (out / "training" / "checkpoints").exists()

    # Evaluation: validation loss per kind before/after, control grid old vs new.
    rep = json.loads((out / "training" / "eval" / "report.json").read_text())
    assert set(rep["validation_loss"]["after"]) == {"tts", "controllable_tts", "all"}
    assert rep["validation_loss"]["before"]["tts"]["examples"] == 1
    for name in ("old", "new"):
        own = json.loads((out / "training" / "eval" / name / "report.json").read_text())
        assert rep["control"][name]["requested"] == 8 == own["requested"]
        assert rep["control"][name]["accuracy"]["pitch"]["exact"] == own["tables"]["pitch"]["accuracy"]
    page = (out / "training" / "eval" / "report.html").read_text()
    assert "old/report.html" in page and "new/report.html" in page and "Validation loss per example kind" in page
    assert json.loads((out / "training" / "summary.json").read_text())["steps"] == 30
    assert any(line.startswith("validation loss (before -> after): tts ") for line in lines)


def _cli(args, env_extra=None):
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", VOXBOX_PROGRESS="0")
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "voxbox", "train", "sparktts", *args], capture_output=True,
                          text=True, env=env, start_new_session=True, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["lora", "full"])
def test_killed_and_resumed_run_reaches_the_same_weights(model_dir, built, tmp_path, mode):
    # Two epochs of two packed batches each, accumulating 2; LoRA with dropout (RNG state).
    args = [str(built), "--model-dir", str(model_dir), "--max-steps", "6", "--grad-accum", "2",
            "--batch-tokens", "160", "--max-tokens", "160", "--save-steps", "2", "--logging-steps", "1",
            "--device", "cpu", "--seed", "7", "--lr", "1e-2", "--no-eval-control",
            "--lora-dropout", "0.2", "--lora-r", "4", f"--{mode}"]
    whole = _cli([*args, "--out", str(tmp_path / "a")])
    assert whole.returncode == 0, whole.stderr[-2000:]

    killed = _cli([*args, "--out", str(tmp_path / "b")], {"VOXBOX_KILL_AT": "train_step:5"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (tmp_path / "b" / "LLM").exists()
    assert sorted(p.name for p in (tmp_path / "b" / "training" / "checkpoints").iterdir()) == [
        "checkpoint-2", "checkpoint-4"]
    again = _cli([*args, "--out", str(tmp_path / "b")])
    assert again.returncode == 1 and "pass --resume" in again.stderr
    resumed = _cli([*args, "--out", str(tmp_path / "b"), "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from checkpoint-4" in resumed.stdout

    a, b = _tensors(tmp_path / "a" / "LLM" / "model.safetensors"), _tensors(tmp_path / "b" / "LLM" / "model.safetensors")
    base = _tensors(model_dir / "LLM" / "model.safetensors")
    assert a.keys() == b.keys() == base.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], base[k]) for k in a)
    runs = [json.loads((tmp_path / d / "training" / "summary.json").read_text()) for d in "ab"]
    assert runs[0]["validation_loss"]["after"] == runs[1]["validation_loss"]["after"]
    assert runs[0]["data"]["train"] == runs[1]["data"]["train"]
