"""The model side of ``voxbox train sparktts``: loading (full or LoRA), the Trainer,
validation loss, and writing the fine-tuned ``LLM/`` folder.

transformers' ``Trainer`` runs the loop: optimizer, schedule, gradient accumulation,
mixed precision, checkpoints with optimizer/scheduler/RNG state, and resuming. Two
things are ours:

- The data order. The whole run (every epoch) is planned up front as one list of
  packed micro-batches (:mod:`voxbox.sparktts.train_data`) and handed to the Trainer
  as a single pass read in order. The Trainer's own resume arithmetic (skip
  ``global_step x accumulation`` batches, then restore the RNG) is then exact,
  whatever the epochs' lengths.
- Validation loss per example kind, token-weighted (the Trainer's evaluation loop
  averages per-batch means), logged as ``eval_<kind>_loss``.

Progress lines carry the loss, learning rate, the data epoch and tokens/s (all ids and
target ids).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from voxbox.errors import VoxboxError
from voxbox.sparktts.train_data import IGNORE, Collator, ExampleTable, PackedBatches, Plan, collate

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".safetensors.index.json", ".bin.index.json")


def require_training_libs(lora: bool) -> None:
    """Fail with the install line when an optional training dependency is missing."""
    missing = []
    for mod in ("accelerate",) + (("peft",) if lora else ()):
        try:
            __import__(mod)
        except ImportError:
            missing.append(mod)
    if missing:
        raise VoxboxError(f"voxbox train needs {' and '.join(missing)}: pip install 'voxbox[train]'")


# ------------------------------------------------------------------------------------
# Model
# ------------------------------------------------------------------------------------

def load_model(llm_dir: Path, attn: str, lora: Optional[dict], seed: int, gradient_checkpointing: bool):
    """The LLM in float32 (the master weights; bf16 runs as autocast over them), wrapped
    with LoRA adapters on every linear layer when ``lora`` (r, alpha, dropout) is given."""
    import torch
    from transformers import AutoModelForCausalLM

    from spark_tokenize import prompts as P
    from spark_tokenize.tts import _dtype_kwarg

    try:
        model = AutoModelForCausalLM.from_pretrained(str(llm_dir), attn_implementation=attn,
                                                     **_dtype_kwarg(torch.float32))
    except (OSError, ValueError, ImportError) as e:
        raise VoxboxError(f"{llm_dir}: cannot load the LLM ({str(e).splitlines()[0].strip()})") from None
    if model.config.vocab_size < P.VOCAB_SIZE:
        raise VoxboxError(f"{llm_dir}: vocab_size {model.config.vocab_size} < {P.VOCAB_SIZE} Spark-TTS tokens")
    model.config.use_cache = False  # training; the written folder gets the source config back
    if gradient_checkpointing:
        model.enable_input_require_grads()  # LoRA: frozen embeddings would cut the graph
    if lora is None:
        return model
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)  # the adapters' initial weights
    config = LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"],
                        target_modules=list(LORA_TARGETS), task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def trainable_parameters(model) -> Dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": int(trainable), "total": int(total)}


def validation_loss(model, table: ExampleTable, batches: Dict[str, List[np.ndarray]], device,
                    bf16: bool) -> Dict[str, dict]:
    """Mean cross-entropy per target token, per example kind, plus ``all`` (every kind)."""
    import contextlib

    import torch
    import torch.nn.functional as F

    was_training = model.training
    model.eval()
    cast = torch.autocast(device_type=device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    out: Dict[str, dict] = {}
    with torch.no_grad(), cast:
        for task, task_batches in batches.items():
            total, n = 0.0, 0
            for b in task_batches:
                inputs = collate(table, b)
                logits = model(input_ids=inputs["input_ids"].to(device),
                               position_ids=inputs["position_ids"].to(device), use_cache=False).logits
                labels = inputs["labels"][:, 1:].to(device)  # position t predicts id t + 1
                total += float(F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                                               labels.reshape(-1), ignore_index=IGNORE, reduction="sum"))
                n += int((labels != IGNORE).sum())
            if n:
                out[task] = {"loss": total / n, "target_tokens": n, "examples": int(sum(len(b) for b in task_batches))}
    model.train(was_training)
    if out:
        n_all = sum(v["target_tokens"] for v in out.values())
        out["all"] = {"loss": sum(v["loss"] * v["target_tokens"] for v in out.values()) / n_all,
                      "target_tokens": n_all, "examples": sum(v["examples"] for v in out.values())}
    return out


# ------------------------------------------------------------------------------------
# Trainer
# ------------------------------------------------------------------------------------

def make_trainer(model, args, table: ExampleTable, plan: Plan, val_batches: Dict[str, List[np.ndarray]],
                 bf16: bool, callbacks=()):
    """A transformers Trainer reading ``plan`` in order (see module doc)."""
    import torch
    from transformers import Trainer

    class SparkTrainer(Trainer):
        def _get_train_sampler(self, train_dataset=None):
            return torch.utils.data.SequentialSampler(train_dataset or self.train_dataset)

        def training_step(self, model, inputs, num_items_in_batch=None):
            if self._meter_t0 is None:
                self._meter_t0 = time.perf_counter()
            self._meter[0] += int(inputs["input_ids"].numel())
            self._meter[1] += int((inputs["labels"] != IGNORE).sum())
            return super().training_step(model, inputs, num_items_in_batch)

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
            losses = validation_loss(self.model, table, val_batches, self.args.device, bf16)
            metrics = {f"{metric_key_prefix}_loss": losses["all"]["loss"]} if "all" in losses else {}
            metrics.update({f"{metric_key_prefix}_{t}_loss": v["loss"] for t, v in losses.items() if t != "all"})
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
            return metrics

        def log(self, logs, start_time=None):
            logs = dict(logs)
            if "loss" in logs and self._meter_t0 is not None:
                now = time.perf_counter()
                dt = max(now - self._meter_t0, 1e-9)
                logs["tokens_per_s"] = round(self._meter[0] / dt, 1)
                logs["target_tokens_per_s"] = round(self._meter[1] / dt, 1)
                self._meter, self._meter_t0 = [0, 0], now
            # The Trainer sees one pass over the whole plan; users want data epochs.
            trainer_epoch = self.state.epoch
            done = min(self.state.global_step * self.args.gradient_accumulation_steps, len(plan.batches))
            self.state.epoch = round(plan.epoch_at(done), 4)
            try:
                super().log(logs, start_time)
            finally:
                self.state.epoch = trainer_epoch

    trainer = SparkTrainer(model=model, args=args, train_dataset=PackedBatches(plan.batches),
                           eval_dataset=PackedBatches([b for bs in val_batches.values() for b in bs]) or None,
                           data_collator=Collator(table), callbacks=list(callbacks))
    trainer._meter, trainer._meter_t0 = [0, 0], None
    return trainer


def callbacks(max_steps: int) -> list:
    """A checkpoint at the last step too (a run killed during the evaluation resumes
    without training again), and the test hook ``VOXBOX_KILL_AT=train_step:N``: SIGKILL
    at the end of the N-th optimizer step of this process, before its checkpoint."""
    from transformers import TrainerCallback

    from voxbox.build.engine.common import fault_point

    class RunHooks(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            fault_point("train_step")
            if state.global_step >= max_steps:
                control.should_save = True
            return control

    return [RunHooks()]


def last_checkpoint(folder: Path) -> Optional[Path]:
    """The newest complete Trainer checkpoint in ``folder``: the Trainer writes
    ``trainer_state.json`` last, so a checkpoint cut short by a kill has none (or a
    broken one) and is passed over."""
    if not folder.is_dir():
        return None
    found = []
    for p in folder.iterdir():
        name, _, step = p.name.partition("-")
        if name != "checkpoint" or not step.isdigit() or not p.is_dir():
            continue
        try:
            state = json.loads((p / "trainer_state.json").read_text())
        except (OSError, ValueError):
            continue
        if state.get("global_step") == int(step):
            found.append((int(step), p))
    return max(found)[1] if found else None


# ------------------------------------------------------------------------------------
# The fine-tuned LLM/ folder
# ------------------------------------------------------------------------------------

def _is_weights(name: str) -> bool:
    return name.endswith(WEIGHT_SUFFIXES)


def weights_dtype(llm_dir: Path):
    """The floating dtype the source LLM's safetensors store (fp32 for the release)."""
    import torch

    names = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}
    files = sorted(llm_dir.glob("*.safetensors"))
    if not files:
        return torch.float32
    with open(files[0], "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(min(n, 100_000_000)))
    for key, info in header.items():
        if key != "__metadata__" and info.get("dtype") in names:
            return names[info["dtype"]]
    return torch.float32


def write_llm(model, src_llm: Path, dest: Path) -> None:
    """Save the merged model to ``dest`` (LLM/) with the source's dtype, and the source's
    own config, generation config and tokenizer files byte for byte, so loaders that
    read the original folder (the official code on transformers 4.46) read this one."""
    import torch

    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model = model.to(device="cpu", dtype=weights_dtype(src_llm))
    tmp = dest.with_name(dest.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    with torch.no_grad():
        model.save_pretrained(str(tmp))
    for p in tmp.iterdir():  # what save_pretrained wrote besides weights is replaced below
        if not _is_weights(p.name):
            p.unlink()
    for p in sorted(src_llm.iterdir()):
        if p.is_file() and not _is_weights(p.name):
            shutil.copy2(p, tmp / p.name)
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)
