"""``voxbox train sparktts``: fine-tune the Spark-TTS LLM on built datasets.

From built folders (or ``export sparktts`` outputs) to a model folder in the official
layout, in five steps:

1. Examples: both kinds (zero-shot TTS and controllable TTS) from
   :mod:`voxbox.sparktts.export`, encoded with the model's tokenizer; records of the
   validation splits (``test``, ``dev``, ... by default; the authors routed ``test`` to
   validation) are held out (:mod:`voxbox.sparktts.train_data`).
2. A plan: every epoch's examples in the mix the user set, packed into micro-batches of
   at most ``batch_tokens`` ids.
3. Training with transformers' Trainer, full fine-tuning or LoRA (peft), checkpoints
   under ``OUT/training/checkpoints`` that resume exactly (:mod:`.train_loop`).
4. ``OUT/LLM`` (LoRA merged; the source's config and tokenizer files byte for byte),
   ``BiCodec/``, ``wav2vec2-large-xlsr-53/`` and ``config.yaml`` copied or linked.
5. Evaluation (:mod:`.train_report`): validation loss per example kind before and after,
   and ``synth control`` on a fixed grid with the old and the new model side by side.

``OUT/training/`` keeps the record: ``run.json`` (settings and data fingerprint, checked
on ``--resume``), ``data.json`` (examples and skips per input), ``summary.json`` (written
last: the run is finished) and ``eval/``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

from spark_tokenize.layout import BICODEC_SUBDIR, WAV2VEC2_SUBDIR
from voxbox.errors import VoxboxError
from voxbox.sparktts.export import TASKS
from voxbox.sparktts.train_data import DEFAULT_VAL_SPLITS

TRAINING = "training"
CODEC_PARTS = ("config.yaml", BICODEC_SUBDIR, WAV2VEC2_SUBDIR)
OUR_ENTRIES = {n + sfx for n in CODEC_PARTS + ("LLM",) for sfx in ("", ".partial")} | {TRAINING}
CODEC_MODES = ("copy", "symlink", "hardlink")
SCHEDULERS = ("cosine", "linear", "constant_with_warmup")
ATTENTION = ("sdpa", "eager", "flash_attention_2")
# Settings a resumed run must share with the run it continues (the rest may change).
RESUME_KEYS = ("model_dir", "lora", "lora_r", "lora_alpha", "lora_dropout", "epochs", "max_steps", "lr",
               "batch_tokens", "grad_accum", "max_tokens", "mix", "val_splits", "val_fraction", "seed", "dtype",
               "warmup", "scheduler", "weight_decay", "max_grad_norm", "attn", "boundaries")
DEFAULT_EVAL_TEXT = "The quick brown fox jumps over the lazy dog."


@dataclass
class TrainConfig:
    """Every setting of a run (the CLI's options); see ``voxbox train sparktts --help``."""

    model_dir: str
    out: str
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    epochs: Optional[int] = None  # None with max_steps None: 1
    max_steps: Optional[int] = None
    lr: Optional[float] = None  # None: 5e-5 full, 2e-4 LoRA
    batch_tokens: int = 4096
    grad_accum: int = 4
    max_tokens: int = 1500
    mix: Optional[str] = None
    val_splits: Tuple[str, ...] = DEFAULT_VAL_SPLITS
    val_fraction: float = 0.0
    seed: int = 0
    device: str = "auto"
    dtype: str = "auto"
    warmup: float = 0.03
    scheduler: str = "cosine"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    save_steps: int = 500
    keep_checkpoints: int = 2
    eval_steps: Optional[int] = None  # None: every save
    logging_steps: int = 10
    gradient_checkpointing: bool = False
    attn: str = "sdpa"
    codec_files: str = "copy"
    boundaries: Optional[str] = None
    eval_control: bool = True
    eval_text: str = DEFAULT_EVAL_TEXT
    eval_levels: Tuple[str, ...] = ("very_low", "low", "moderate", "high", "very_high")
    eval_repeats: int = 1
    eval_max_new_tokens: int = 1000
    eval_constrain: bool = False
    eval_batch_size: int = 8
    keep_all_checkpoints: bool = False
    resume: bool = False
    overwrite: bool = False
    inputs: List[str] = field(default_factory=list)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (2e-4 if self.lora else 5e-5)

    def check(self) -> None:
        """Option errors, before anything is read or written."""
        positive = {"--batch-tokens": self.batch_tokens, "--grad-accum": self.grad_accum,
                    "--max-tokens": self.max_tokens, "--save-steps": self.save_steps,
                    "--logging-steps": self.logging_steps, "--lora-r": self.lora_r,
                    "--eval-repeats": self.eval_repeats, "--eval-max-new-tokens": self.eval_max_new_tokens,
                    "--eval-batch-size": self.eval_batch_size}
        for name, v in positive.items():
            if v < 1:
                raise VoxboxError(f"{name} must be at least 1, got {v}")
        for name, v in (("--epochs", self.epochs), ("--max-steps", self.max_steps), ("--eval-steps", self.eval_steps)):
            if v is not None and v < 1:
                raise VoxboxError(f"{name} must be at least 1, got {v}")
        if self.max_tokens > self.batch_tokens:
            raise VoxboxError(f"--max-tokens {self.max_tokens} is longer than --batch-tokens {self.batch_tokens}: "
                              "a batch must hold the longest example")
        if self.lr is not None and not self.lr > 0:
            raise VoxboxError(f"--lr must be > 0, got {self.lr}")
        if not 0 <= self.val_fraction < 1 or not 0 <= self.warmup < 1 or not 0 <= self.lora_dropout < 1:
            raise VoxboxError("--val-fraction, --warmup and --lora-dropout are fractions in [0, 1)")
        if self.keep_checkpoints < 1:
            raise VoxboxError(f"--keep-checkpoints must be at least 1, got {self.keep_checkpoints}")
        for name, v, allowed in (("--codec-files", self.codec_files, CODEC_MODES),
                                 ("--scheduler", self.scheduler, SCHEDULERS), ("--attn", self.attn, ATTENTION)):
            if v not in allowed:
                raise VoxboxError(f"{name}: unknown value {v!r}; use one of {', '.join(allowed)}")
        from spark_tokenize import prompts as P
        from spark_tokenize.errors import TokenizerError

        try:
            self.eval_levels = tuple(P.LEVELS[P.level_index(x)] for x in self.eval_levels)
        except TokenizerError as e:
            raise VoxboxError(f"--eval-levels: {e}") from None
        if self.eval_control and (not self.eval_levels or not self.eval_text.strip()):
            raise VoxboxError("the control check needs --eval-levels and a non-empty --eval-text")
        from voxbox.sparktts.train_data import parse_mix

        parse_mix(self.mix)
        if self.resume and self.overwrite:
            raise VoxboxError("--resume continues a run and --force starts over: give one")

    def record(self) -> dict:
        d = dataclasses.asdict(self)
        d["val_splits"], d["eval_levels"] = list(self.val_splits), list(self.eval_levels)
        d["lr"] = self.learning_rate
        return d


# ------------------------------------------------------------------------------------
# Folders
# ------------------------------------------------------------------------------------

def check_model_dir(model_dir: Path) -> None:
    from voxbox.release.hub import missing_model_files

    if not model_dir.is_dir():
        raise VoxboxError(f"{model_dir}: model folder not found")
    missing = missing_model_files(model_dir)
    if missing:
        raise VoxboxError(f"{model_dir}: not a Spark-TTS model folder in the official layout: missing "
                          + ", ".join(missing[:4]) + (" ..." if len(missing) > 4 else ""))


def check_out(cfg: TrainConfig) -> None:
    """Check ``--out`` against ``--resume``/``--force`` without touching it."""
    out, model_dir = Path(cfg.out), Path(cfg.model_dir)
    if out.exists() and not out.is_dir():
        raise VoxboxError(f"{out}: exists and is not a folder")
    if out.resolve() == model_dir.resolve() or model_dir.resolve() in out.resolve().parents:
        raise VoxboxError(f"{out}: the output folder must not be the model folder or inside it")
    entries = {p.name for p in out.iterdir()} if out.is_dir() else set()
    run_file = out / TRAINING / "run.json"
    if cfg.overwrite:
        foreign = sorted(entries - OUR_ENTRIES)
        if foreign:
            raise VoxboxError(f"{out}: holds files voxbox train did not write ({', '.join(foreign[:3])}); "
                              "--force only replaces a training output, choose another --out")
    elif run_file.is_file():
        if not cfg.resume:
            raise VoxboxError(f"{out}: holds a training run; pass --resume to continue it or --force to start over")
        if (out / TRAINING / "summary.json").is_file():
            raise VoxboxError(f"{out}: this training run is finished; pass --force to train again")
    elif entries:
        raise VoxboxError(f"{out}: is not empty; choose a new folder for the fine-tuned model")


def prepare_out(cfg: TrainConfig) -> Path:
    """Create ``--out`` (emptied first with ``--force``; :func:`check_out` ran before)."""
    out = Path(cfg.out)
    if cfg.overwrite and out.is_dir():
        for p in list(out.iterdir()):
            _remove(p)
    (out / TRAINING).mkdir(parents=True, exist_ok=True)
    return out


def _remove(p: Path) -> None:
    if p.is_symlink() or p.is_file():
        p.unlink()
    elif p.is_dir():
        shutil.rmtree(p)


def check_resume(out: Path, run: dict) -> None:
    """Write ``run.json``, or on resume refuse settings/data that differ from it."""
    from voxbox.shards import index as ix

    path = out / TRAINING / "run.json"
    if path.is_file():
        old = json.loads(path.read_text())
        changed = [k for k in RESUME_KEYS + ("data_fingerprint", "inputs") if old.get(k) != run.get(k)]
        if changed:
            raise VoxboxError(f"{out}: cannot resume, these differ from the run being resumed: {', '.join(changed)} "
                              "(give the same inputs and settings, or --force to start over)")
        return
    ix.write_text_atomic(path, json.dumps(run, indent=2, ensure_ascii=False) + "\n")


def copy_codec(model_dir: Path, out: Path, mode: str) -> None:
    """``config.yaml``, ``BiCodec/`` and ``wav2vec2-large-xlsr-53/`` into ``out``."""
    for name in CODEC_PARTS:
        src, dest = (model_dir / name).resolve(), out / name
        tmp = out / (name + ".partial")
        _remove(tmp)
        if mode == "symlink":
            os.symlink(src, tmp)
        elif src.is_dir():
            copy = os.link if mode == "hardlink" else shutil.copy2
            shutil.copytree(src, tmp, copy_function=copy)
        elif mode == "hardlink":
            os.link(src, tmp)
        else:
            shutil.copy2(src, tmp)
        _remove(dest)
        os.replace(tmp, dest)


# ------------------------------------------------------------------------------------
# Devices
# ------------------------------------------------------------------------------------

def resolve_compute(device: str, dtype: str):
    """(torch.device, bf16?) for training. float32 everywhere, bfloat16 autocast on CUDA;
    ``cuda:N`` picks one GPU (the run uses exactly one)."""
    import torch

    from spark_tokenize.errors import TokenizerError
    from spark_tokenize.tts import resolve

    if device.startswith("cuda:") and "CUDA_VISIBLE_DEVICES" not in os.environ:
        # The Trainer spreads over every visible GPU (DataParallel), which cannot split a packed row.
        os.environ["CUDA_VISIBLE_DEVICES"] = device.split(":", 1)[1]
        device = "cuda"
    try:
        dev, dt = resolve(device, dtype)
    except TokenizerError as e:
        raise VoxboxError(str(e)) from None
    if dev.type == "cuda" and torch.cuda.device_count() > 1:
        raise VoxboxError(f"{torch.cuda.device_count()} GPUs are visible; train on one: --device cuda:N "
                          "(or set CUDA_VISIBLE_DEVICES)")
    return dev, dt == torch.bfloat16


# ------------------------------------------------------------------------------------
# The run
# ------------------------------------------------------------------------------------

def train_sparktts(inputs: Sequence[Union[str, Path]], cfg: TrainConfig, echo=print) -> dict:
    """Run (or resume) a fine-tune; returns the summary written to ``training/summary.json``."""
    from voxbox.sparktts import train_loop as L

    cfg.check()
    if not inputs:
        raise VoxboxError("give at least one dataset folder")
    cfg.inputs = [str(Path(p).resolve()) for p in dict.fromkeys(str(p) for p in inputs)]
    model_dir = Path(cfg.model_dir)
    check_model_dir(model_dir)
    L.require_training_libs(cfg.lora)
    dev, bf16 = resolve_compute(cfg.device, cfg.dtype)
    check_out(cfg)
    tokenizer = _load_tokenizer(model_dir / "LLM")
    table, data = _load_data(cfg, tokenizer, echo)
    out = prepare_out(cfg)
    plan, max_steps = _plan(cfg, table)
    run = {**cfg.record(), "data_fingerprint": table.fingerprint(), "device": str(dev), "bf16": bf16,
           "steps": max_steps, "micro_batches": len(plan.batches), "epochs_planned": len(plan.epoch_starts)}
    check_resume(out, run)
    _write_json(out / TRAINING / "data.json", data)
    echo(_data_line(data, plan, max_steps, cfg))
    trained = _train(cfg, out, table, plan, max_steps, dev, bf16, echo)
    copy_codec(model_dir, out, cfg.codec_files)
    from voxbox.release.hub import missing_model_files

    missing = missing_model_files(out)
    if missing:  # a bug, not a user error: the folder we wrote must have the layout
        raise VoxboxError(f"{out}: written folder lacks {', '.join(missing)}")
    echo(f"wrote the fine-tuned model to {out}")
    report = _evaluate(cfg, out, trained, dev, bf16, echo)
    summary = {"out": str(out), "model_dir": str(model_dir), "steps": max_steps, **trained, "data": data,
               "evaluation": report}
    from voxbox.shards import index as ix

    ix.write_text_atomic(out / TRAINING / "summary.json",
                         json.dumps(summary, indent=2, ensure_ascii=False, default=str) + "\n")
    if not cfg.keep_all_checkpoints:
        _remove(out / TRAINING / "checkpoints")
    return summary


def _load_tokenizer(llm_dir: Path):
    from voxbox.sparktts.export import IdEncoder

    return IdEncoder(llm_dir).tokenizer


def _load_data(cfg: TrainConfig, tokenizer, echo):
    from voxbox.sparktts.train_data import LoadOptions, load_examples, parse_mix

    mix = parse_mix(cfg.mix)
    tasks = tuple(mix) if mix else TASKS
    opts = LoadOptions(tasks=tasks, val_splits=tuple(cfg.val_splits), val_fraction=cfg.val_fraction,
                       max_tokens=cfg.max_tokens, boundaries=cfg.boundaries)
    table, data = load_examples(cfg.inputs, tokenizer, opts)
    missing = [t for t in tasks if not len(table.select(t))]
    if len(missing) == len(tasks) or (mix and missing):
        what = f"--mix asks for {', '.join(missing)} but there is no such training example" if mix else \
            "no training examples"
        raise VoxboxError(f"{what} in {', '.join(cfg.inputs)} (skipped: {_skip_text(data)}; "
                          f"validation splits: {', '.join(cfg.val_splits)})")
    if not table.val.any():
        echo(f"note: no validation examples (no records in splits {', '.join(cfg.val_splits)}); "
             "validation loss is not measured (see --val-splits, --val-fraction)")
    data["mix"] = mix
    return table, data


def _skip_text(data: dict) -> str:
    skips: dict = {}
    for s in data["sources"]:
        for task, reasons in s["skipped"].items():
            for r, n in reasons.items():
                skips[f"{task} {r}"] = skips.get(f"{task} {r}", 0) + n
    return ", ".join(f"{k} {v}" for k, v in sorted(skips.items())) or "nothing"


def _plan(cfg: TrainConfig, table):
    from voxbox.sparktts.train_data import make_plan, parse_mix

    epochs = cfg.epochs if cfg.epochs is not None or cfg.max_steps is not None else 1
    max_batches = cfg.max_steps * cfg.grad_accum if cfg.max_steps is not None else None
    plan = make_plan(table, parse_mix(cfg.mix), cfg.batch_tokens, cfg.seed, epochs, max_batches)
    return plan, math.ceil(len(plan.batches) / cfg.grad_accum)


def _data_line(data: dict, plan, steps: int, cfg: TrainConfig) -> str:
    parts = []
    for role in ("train", "validation"):
        kinds = ", ".join(f"{v['examples']} {t}" for t, v in data[role].items()) or "none"
        parts.append(f"{role}: {kinds}")
    return (f"{'; '.join(parts)}. Plan: {len(plan.epoch_starts)} epoch(s), {len(plan.batches)} packed batches "
            f"of <= {cfg.batch_tokens} tokens, {steps} optimizer steps (accumulating {cfg.grad_accum}).")


def _write_json(path: Path, obj) -> None:
    from voxbox.shards import index as ix

    ix.write_text_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def _training_args(cfg: TrainConfig, out: Path, max_steps: int, dev, bf16: bool, has_val: bool):
    from transformers import TrainingArguments

    from voxbox.progress import _disabled

    eval_steps = cfg.eval_steps or cfg.save_steps
    extra = {}
    if cfg.gradient_checkpointing:  # renamed in transformers 5
        fields = {f.name for f in dataclasses.fields(TrainingArguments)}
        extra["activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"] = True
    return TrainingArguments(
        output_dir=str(out / TRAINING / "checkpoints"), max_steps=max_steps, num_train_epochs=1,
        per_device_train_batch_size=1, per_device_eval_batch_size=1, gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate, lr_scheduler_type=cfg.scheduler, warmup_steps=int(cfg.warmup * max_steps),
        weight_decay=cfg.weight_decay, max_grad_norm=cfg.max_grad_norm, optim="adamw_torch",
        bf16=bf16, use_cpu=dev.type == "cpu", seed=cfg.seed,
        save_strategy="steps", save_steps=cfg.save_steps, save_total_limit=cfg.keep_checkpoints,
        eval_strategy="steps" if has_val else "no", eval_steps=eval_steps,
        logging_strategy="steps", logging_steps=cfg.logging_steps, logging_first_step=True,
        report_to="none", disable_tqdm=bool(_disabled()), remove_unused_columns=False,
        dataloader_num_workers=0, dataloader_pin_memory=dev.type == "cuda", **extra,
    )


def _train(cfg: TrainConfig, out: Path, table, plan, max_steps: int, dev, bf16: bool, echo) -> dict:
    """Train (resuming from the newest complete checkpoint), write ``OUT/LLM``; returns
    the validation losses before/after, trainable parameters and throughput."""
    import torch

    from voxbox.sparktts import train_loop as L
    from voxbox.sparktts.train_data import eval_batches

    tasks = [t for t in TASKS if len(table.select(t, val=True))]
    val = {t: eval_batches(table, t, cfg.batch_tokens) for t in tasks}
    lora = {"r": cfg.lora_r, "alpha": cfg.lora_alpha, "dropout": cfg.lora_dropout} if cfg.lora else None
    model = L.load_model(Path(cfg.model_dir) / "LLM", cfg.attn, lora, cfg.seed, cfg.gradient_checkpointing)
    params = L.trainable_parameters(model)
    before_path = out / TRAINING / "val_before.json"  # measured once; a resumed run reuses it
    if before_path.is_file():
        before = json.loads(before_path.read_text())
    else:
        before = L.validation_loss(model.to(dev), table, val, dev, bf16)
        _write_json(before_path, before)
    ckpt = L.last_checkpoint(out / TRAINING / "checkpoints") if cfg.resume else None
    echo(f"{'LoRA' if cfg.lora else 'full'} fine-tuning of {params['trainable']:,} of {params['total']:,} "
         f"parameters on {dev}{' (bf16 autocast)' if bf16 else ''}"
         + (f"; resuming from {ckpt.name}" if ckpt else ""))
    args = _training_args(cfg, out, max_steps, dev, bf16, bool(val))
    trainer = L.make_trainer(model, args, table, plan, val, bf16, callbacks=L.callbacks(max_steps))
    result = trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    model = trainer.model
    after = L.validation_loss(model, table, val, dev, bf16)
    history = [h for h in trainer.state.log_history]
    L.write_llm(model, Path(cfg.model_dir) / "LLM", out / "LLM")
    del trainer, model
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    metrics = result.metrics
    return {"parameters": params, "validation_loss": {"before": before, "after": after},
            "train_loss": _last(history, "loss"), "train_runtime_s": metrics.get("train_runtime"),
            "throughput": _throughput(history), "history": history}


def _last(history: List[dict], key: str):
    vals = [h[key] for h in history if key in h]
    return vals[-1] if vals else None


def _throughput(history: List[dict]) -> dict:
    """Median tokens/s over the logged intervals (the first includes start-up)."""
    import statistics

    out = {}
    for key in ("tokens_per_s", "target_tokens_per_s"):
        vals = [h[key] for h in history if key in h][1:] or [h[key] for h in history if key in h]
        out[key] = statistics.median(vals) if vals else None
    return out


def _evaluate(cfg: TrainConfig, out: Path, trained: dict, dev, bf16: bool, echo) -> dict:
    from voxbox.sparktts.train_report import evaluate_run

    return evaluate_run(cfg, out, trained, dev, bf16, echo)

