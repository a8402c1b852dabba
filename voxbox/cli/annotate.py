"""CLI command: voxbox annotate (see voxbox.cli for conventions)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def _echo(msg: str) -> None:
    from voxbox.cli.output import notice

    notice(msg)


def annotate(
    manifest: Path = typer.Argument(..., help="Input manifest (.jsonl, .jsonl.gz or .parquet) from `voxbox prepare`."),
    out: Path = typer.Option(..., "--out", "-o", help="Output manifest (.jsonl, .jsonl.gz or .parquet); "
                                                     "rejected records go to <stem>.rejects.jsonl next to it, "
                                                     "after the input's own rejects (carried forward)."),
    workers: int = typer.Option(1, "--workers", "-j", min=1,
                                help="Worker processes (local) or actors/tasks (ray); each loads its own models."),
    engine: str = typer.Option("local", "--engine", help="local (worker processes) or ray (Ray Data; needs the "
                                                          "ray extra of voxbox)."),
    ray_address: Optional[str] = typer.Option(
        None, "--ray-address", help="Ray cluster to join (e.g. ray://head:10001 or 'auto'). Default: $RAY_ADDRESS, "
                                    "else a local Ray instance."),
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
    allow_absolute_paths: bool = typer.Option(
        False, "--allow-absolute-paths",
        help="Read audio at source paths that leave the record's corpus_root (absolute, or with '..'). Default: "
             "such records are rejected, since a manifest could otherwise copy any readable file into the output."),
) -> None:
    """Fill every annotation field the way the VoxBox release computed it: pitch, pitch_std,
    durations, syllables, speed, language, gender/age/emotion with their provenance, five-level
    labels and value tokens, loudness and clipping ratio.

    Interrupted runs resume where they stopped when rerun with the same arguments
    (finished work is kept in OUT.work/)."""
    from voxbox.annotate.runner import annotate_manifest

    summary = annotate_manifest(
        manifest, out, workers=workers, engine=engine, ray_address=ray_address, log=_echo, limit=limit,
        allow_absolute_paths=allow_absolute_paths, pitch_backend=pitch_backend,
        boundaries=str(boundaries) if boundaries else None, gender_model=gender_model,
        gender_labels=gender_labels, age_model=age_model, age_labels=age_labels,
        emotion_model=emotion_model, emotion_labels=emotion_labels, zh_numbers=zh_numbers, device=device)
    from voxbox.cli.output import result

    result(summary, f"annotated {summary['records']} records ({summary['audio_hours']} h) -> {out}; "
                    f"{summary['reject_summary']}")


def register(app: typer.Typer) -> None:
    app.command("annotate")(annotate)
