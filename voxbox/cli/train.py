"""CLI command group: voxbox train (sparktts); see voxbox.cli for conventions."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

train_app = typer.Typer(help="Train models on built datasets.", no_args_is_help=True)

_LEVELS = "very_low,low,moderate,high,very_high"


@train_app.command("sparktts")
def sparktts_cmd(
    inputs: List[Path] = typer.Argument(..., help="Built dataset folders (voxbox build, with BiCodec tokens) or "
                                        "`voxbox export sparktts` outputs."),
    model_dir: Path = typer.Option(..., "--model-dir", "-m", help="Spark-TTS model folder to start from, official layout "
                                   "(LLM/, BiCodec/, wav2vec2-large-xlsr-53/, config.yaml)."),
    out: Path = typer.Option(..., "--out", "-o", help="New model folder: the same layout with the fine-tuned LLM/, plus "
                             "training/ (settings, data counts, checkpoints while running, evaluation)."),
    lora: bool = typer.Option(False, "--lora/--full", help="LoRA adapters (peft) on every linear layer, merged into "
                              "the written weights; default: full fine-tuning."),
    lora_r: int = typer.Option(16, "--lora-r", help="LoRA rank."),
    lora_alpha: int = typer.Option(32, "--lora-alpha", help="LoRA scaling alpha."),
    lora_dropout: float = typer.Option(0.05, "--lora-dropout", help="Dropout on the LoRA path."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Passes over the training examples (default 1; "
                                         "with --max-steps, as many as the steps need)."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Stop after this many optimizer steps "
                                            "(the smaller of this and --epochs wins)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate (default 5e-5 full, 2e-4 LoRA)."),
    batch_tokens: int = typer.Option(4096, "--batch-tokens", help="Token budget of a packed micro-batch: whole "
                                     "examples back to back, none attending to another."),
    grad_accum: int = typer.Option(4, "--grad-accum", help="Micro-batches per optimizer step."),
    max_tokens: int = typer.Option(1500, "--max-tokens", help="Skip (and count) examples longer than this many ids, "
                                   "prompt + target (SparkVox trains with 1500)."),
    mix: Optional[str] = typer.Option(None, "--mix", help="Share of each example kind per epoch, e.g. "
                                      "tts=1,controllable_tts=3 (a kind left out is not trained). Default: every "
                                      "example once."),
    val_splits: str = typer.Option(",".join(("test", "dev", "validation", "valid", "val")), "--val-splits",
                                   help="Record splits held out for validation (the authors validated on test)."),
    val_fraction: float = typer.Option(0.0, "--val-fraction", help="Also hold out this fraction of the other "
                                       "records (chosen by a hash of the record index)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the data order, LoRA init and evaluation sampling."),
    device: str = typer.Option("auto", "--device", help="cpu, cuda, cuda:N or auto (CUDA when available)."),
    dtype: str = typer.Option("auto", "--dtype", help="float32, or bfloat16 (autocast over float32 weights, CUDA "
                              "only); auto: bfloat16 on CUDA."),
    warmup: float = typer.Option(0.03, "--warmup", help="Fraction of the steps with a linear learning-rate warmup."),
    scheduler: str = typer.Option("cosine", "--scheduler", help="Learning-rate schedule: cosine, linear or "
                                  "constant_with_warmup."),
    weight_decay: float = typer.Option(0.0, "--weight-decay", help="AdamW weight decay."),
    max_grad_norm: float = typer.Option(1.0, "--max-grad-norm", help="Gradient clipping norm (0: off)."),
    save_steps: int = typer.Option(500, "--save-steps", help="Checkpoint every this many steps."),
    keep_checkpoints: int = typer.Option(2, "--keep-checkpoints", help="Newest checkpoints kept while training."),
    keep_all: bool = typer.Option(False, "--keep-final-checkpoints", help="Keep the newest checkpoints once the run is "
                                  "finished (default: removed after the model is written)."),
    eval_steps: Optional[int] = typer.Option(None, "--eval-steps", help="Validation loss every this many steps "
                                             "(default: at every checkpoint)."),
    logging_steps: int = typer.Option(10, "--logging-steps", help="Progress line (loss, tokens/s) every this many "
                                      "steps."),
    gradient_checkpointing: bool = typer.Option(False, "--gradient-checkpointing", help="Recompute activations in "
                                                "the backward pass: less memory, slower."),
    attn: str = typer.Option("sdpa", "--attn", help="Attention kernel: sdpa, eager or flash_attention_2 (needs "
                             "flash-attn)."),
    codec_files: str = typer.Option("copy", "--codec-files", help="How BiCodec/, wav2vec2-large-xlsr-53/ and "
                                    "config.yaml reach the new folder: copy, symlink or hardlink."),
    boundaries: Optional[Path] = typer.Option(None, "--boundaries", help="Level boundaries JSON for records without "
                                              "stored levels (default: VoxBox's)."),
    eval_control: bool = typer.Option(True, "--eval-control/--no-eval-control", help="End with `synth control` on "
                                      "the old and the new model."),
    eval_text: str = typer.Option("The quick brown fox jumps over the lazy dog.", "--eval-text",
                                  help="Text of every control-check utterance."),
    eval_levels: str = typer.Option(_LEVELS, "--eval-levels", help="Pitch and speed levels of the control grid."),
    eval_repeats: int = typer.Option(1, "--eval-repeats", help="Utterances per control-grid cell."),
    eval_max_new_tokens: int = typer.Option(1000, "--eval-max-new-tokens", help="Most tokens generated per "
                                            "control-check utterance."),
    eval_constrain: bool = typer.Option(False, "--eval-constrain/--no-eval-constrain", help="Constrained decoding in "
                                        "the control check (default: official sampling)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its newest checkpoint "
                                "(same inputs and settings)."),
    overwrite: bool = typer.Option(False, "--force", help="Start over in an --out that holds a training run."),
) -> None:
    """Fine-tune the Spark-TTS LLM on built datasets and write a new model folder.

    Trains on both example kinds of `voxbox export sparktts` (zero-shot TTS and controllable TTS), full or LoRA, with packed token-budget batches, then compares the old and new model: validation loss per kind and a control-check grid (training/eval/report.html).
    """
    from voxbox.sparktts.train import TrainConfig, train_sparktts

    def split(s: str) -> tuple:
        return tuple(x.strip() for x in s.split(",") if x.strip())

    cfg = TrainConfig(
        model_dir=str(model_dir), out=str(out), lora=lora, lora_r=lora_r, lora_alpha=lora_alpha,
        lora_dropout=lora_dropout, epochs=epochs, max_steps=max_steps, lr=lr, batch_tokens=batch_tokens,
        grad_accum=grad_accum, max_tokens=max_tokens, mix=mix, val_splits=split(val_splits),
        val_fraction=val_fraction, seed=seed, device=device, dtype=dtype, warmup=warmup, scheduler=scheduler,
        weight_decay=weight_decay, max_grad_norm=max_grad_norm, save_steps=save_steps,
        keep_checkpoints=keep_checkpoints, keep_all_checkpoints=keep_all, eval_steps=eval_steps,
        logging_steps=logging_steps, gradient_checkpointing=gradient_checkpointing, attn=attn,
        codec_files=codec_files, boundaries=str(boundaries) if boundaries else None, eval_control=eval_control,
        eval_text=eval_text, eval_levels=split(eval_levels), eval_repeats=eval_repeats,
        eval_max_new_tokens=eval_max_new_tokens, eval_constrain=eval_constrain, resume=resume, overwrite=overwrite)
    train_sparktts(inputs, cfg, echo=typer.echo)


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
