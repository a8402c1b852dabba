"""CLI commands: annotate, levels, train-gender (see voxbox.cli for conventions)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def annotate(
    manifest: Path = typer.Argument(..., help="Input manifest (.jsonl, .jsonl.gz or .parquet) from `voxbox prepare`."),
    out: Path = typer.Option(..., "--out", help="Output manifest (.jsonl, .jsonl.gz or .parquet); "
                                                     "rejected records go to OUT's .rejects.jsonl."),
    workers: int = typer.Option(1, "--workers", "-j", min=1, help="Worker processes (each loads its own models)."),
    pitch_backend: str = typer.Option("world", "--pitch-backend",
                                      help="world (VoxBox's definition: WORLD DIO + StoneMask) or praat "
                                           "(Praat autocorrelation). Recorded per record; do not mix."),
    boundaries: Optional[Path] = typer.Option(None, "--boundaries",
                                              help="Level boundaries JSON from `voxbox levels`. "
                                                   "Default: VoxBox's own boundaries."),
    gender_model: str = typer.Option("builtin", "--gender-model",
                                     help="For records without a native gender: 'builtin' (the shipped "
                                          "F0 classifier), 'none' (leave unknown), a model JSON from "
                                          "`voxbox train-gender`, or a Hugging Face audio-classification "
                                          "model (local folder or Hub id)."),
    gender_labels: Optional[str] = typer.Option(None, "--gender-labels",
                                                help="Label map for a Hugging Face gender model: "
                                                     "'LABEL_0=female,LABEL_1=male' or a JSON file. "
                                                     "Default: match the model's label names."),
    age_model: Optional[str] = typer.Option(None, "--age-model",
                                            help="Hugging Face audio-classification model for age groups. "
                                                 "Default: none (age stays null unless native)."),
    age_labels: Optional[str] = typer.Option(None, "--age-labels", help="Label map for --age-model "
                                                                        "(onto Child, Teenager, Youth-Adult, "
                                                                        "Middle-aged, Elderly)."),
    emotion_model: Optional[str] = typer.Option(None, "--emotion-model",
                                                help="Hugging Face audio-classification model for emotion. "
                                                     "Default: none (emotion is UNKNOWN unless native)."),
    emotion_labels: Optional[str] = typer.Option(None, "--emotion-labels",
                                                 help="Label map for --emotion-model (onto the 25 VoxBox "
                                                      "emotions, e.g. 'ang=ANGRY,neu=NEUTRAL')."),
    zh_numbers: str = typer.Option("voxbox", "--zh-numbers",
                                   help="Chinese digit reading: voxbox (as the release: 3+ digit numbers "
                                        "digit by digit, 100 -> 幺零零) or cardinal (100 -> 一百)."),
    device: str = typer.Option("cpu", "--device", help="Torch device for Hugging Face models."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Annotate only the first N records."),
) -> None:
    """Fill every annotation field the way the VoxBox release computed it: pitch, pitch_std,
    durations, syllables, speed, language, gender/age/emotion with their provenance, five-level
    labels and value tokens, loudness and clipping ratio."""
    from ..annotate.runner import annotate_manifest

    summary = annotate_manifest(
        manifest, out, workers=workers, limit=limit, pitch_backend=pitch_backend,
        boundaries=str(boundaries) if boundaries else None, gender_model=gender_model,
        gender_labels=gender_labels, age_model=age_model, age_labels=age_labels,
        emotion_model=emotion_model, emotion_labels=emotion_labels, zh_numbers=zh_numbers, device=device)
    typer.echo(f"annotated {summary['records']} records ({summary['audio_hours']} h) -> {out}; "
               f"{summary['reject_summary']}")


def levels(
    manifest: Path = typer.Argument(..., help="Annotated manifest (output of `voxbox annotate`)."),
    out: Path = typer.Option(..., "--out", help="Boundaries JSON to write (use with annotate --boundaries)."),
    min_count: int = typer.Option(20, "--min-count", min=1,
                                  help="Leave out groups (a gender, a language) with fewer values than this."),
) -> None:
    """Recompute the five-level boundaries from your own data with VoxBox's percentile rule
    (pitch: Mel, p5/p20/p70/p90 per gender; speed: p5/p20/p80/p95 per language; pitch_std:
    p5/p20/p80/p95 per gender)."""
    from ..annotate.runner import levels_from_manifest

    table = levels_from_manifest(manifest, out, min_count=min_count)
    for attr in ("pitch", "speed", "pitch_std"):
        for group, b in table.get(attr, {}).items():
            typer.echo(f"{attr:9s} {group:8s} " + " ".join(f"{x:9.3f}" for x in b))
    if table.get("skipped"):
        typer.echo(f"skipped (fewer than {min_count} values): "
                   + ", ".join(f"{k} {n}" for k, n in table["skipped"].items()))
    typer.echo(f"wrote {out}")


def train_gender(
    manifest: Path = typer.Argument(..., help="Manifest whose records carry native gender labels "
                                              "(e.g. from `voxbox prepare libritts`)."),
    out: Path = typer.Option(..., "--out", help="Model JSON to write (use with annotate --gender-model)."),
    features: str = typer.Option("f0_median,dispersion", "--features",
                                 help="Comma-separated features: f0_median, f0_p10, f0_p90, voiced_fraction, "
                                      "f1, f2, f3, f4, dispersion."),
    l2: float = typer.Option(1.0, "--l2", min=0.0, help="L2 penalty of the logistic regression."),
    folds: int = typer.Option(5, "--folds", min=2, help="Folds of the speaker-disjoint cross-validation."),
    name: Optional[str] = typer.Option(None, "--name", help="Model name recorded in gender_model. "
                                                            "Default: OUT's file name."),
) -> None:
    """Train the built-in gender classifier (acoustic features + logistic regression) on any
    manifest with native gender labels, and report its speaker-disjoint accuracy."""
    from ..annotate.gender import train_gender as train

    feats = [f.strip() for f in features.split(",") if f.strip()]
    model = train(manifest, out, features=feats, l2=l2, name=name, folds=folds)
    cv = model.evaluation.get("cross_validation")
    typer.echo(f"trained {model.name} on {model.trained_on}")
    if cv:
        typer.echo(f"cross-validated accuracy ({cv['scheme']}): {cv['accuracy']:.3f} on {cv['clips']} clips")
    typer.echo(f"wrote {out}")


def register(app: typer.Typer) -> None:
    app.command("annotate")(annotate)
    app.command("levels")(levels)
    app.command("train-gender")(train_gender)
