"""CLI command group: voxbox export (sparktts, lhotse); see voxbox.cli for conventions."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

export_app = typer.Typer(help="Export a built dataset as training data for other tools.", no_args_is_help=True)


@export_app.command("sparktts")
def export_sparktts_cmd(
    dataset: str = typer.Argument(..., help="Built dataset folder (output of voxbox build) with BiCodec tokens. A URL a build wrote to (s3://..., hf://datasets/OWNER/NAME[@REV]/PATH) is read in place."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: sparktts-<split>-NNNNNN.<ext> files + "
                             "summary.json."),
    fmt: str = typer.Option("jsonl", "--format", "-f", help="jsonl or parquet."),
    style: str = typer.Option("prompt", "--style", help="prompt: prompt and target columns; text: one text column "
                              "(prompt + target exactly as the model sees them), as SFT trainers read it."),
    tasks: str = typer.Option("tts,controllable_tts", "--tasks",
                              help="Comma-separated examples to write: tts (zero-shot), controllable_tts."),
    tokenizer: Optional[Path] = typer.Option(None, "--tokenizer", help="Spark-TTS tokenizer folder (LLM/ or a model "
                                             "folder): also write token ids."),
    shard_size: int = typer.Option(50_000, "--shard-size", help="Examples per output file."),
    boundaries: Optional[Path] = typer.Option(None, "--boundaries", help="Level boundaries JSON for records without "
                                              "stored levels (default: VoxBox's)."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="Skip examples longer than this many ids "
                                             "(prompt + target; SparkVox trains with 1500). Needs --tokenizer."),
    force: bool = typer.Option(False, "--force", help="Replace an earlier export in --out."),
) -> None:
    """Write Spark-TTS training examples for a built dataset.

    Two examples per record with tokens: zero-shot TTS, and controllable TTS with the pitch/speed value chain. Skipped records are counted by reason.
    """
    from voxbox.cli.output import result
    from voxbox.sparktts.export import export_sparktts, format_export_summary

    summary = export_sparktts(dataset, out, fmt=fmt, tasks=[t.strip() for t in tasks.split(",") if t.strip()],
                              tokenizer_dir=tokenizer, shard_size=shard_size, overwrite=force,
                              boundaries=boundaries, max_tokens=max_tokens, style=style)
    result(summary, f"{format_export_summary(summary)}\nsummary: {out / 'summary.json'}")


@export_app.command("lhotse")
def export_lhotse_cmd(
    dataset: str = typer.Argument(..., help="Built dataset folder (output of voxbox build). A URL a build wrote to (s3://..., hf://datasets/OWNER/NAME[@REV]/PATH) is read in place."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: one folder of manifests per split + "
                             "summary.json."),
    fmt: str = typer.Option("shar", "--format", "-f", help="shar (Lhotse Shar: cuts + audio tars, like voxbox's "
                            "shards) or jsonl (recordings/supervisions/cuts.jsonl.gz + audio files)."),
    split: Optional[str] = typer.Option(None, "--split", help="Export one split (train, validation/dev, test). "
                                        "Default: all."),
    force: bool = typer.Option(False, "--force", help="Replace an earlier export in --out."),
) -> None:
    """Write lhotse manifests (CutSet, or Lhotse Shar) for a built dataset.

    One cut per record: speaker, language, gender and text on the supervision; the VoxBox fields, utt_id and BiCodec tokens in its custom. Needs lhotse (pip install 'voxbox[lhotse]').
    """
    from voxbox.cli.output import result
    from voxbox.dataset.lhotse import export_lhotse, format_summary

    summary = export_lhotse(dataset, out, fmt=fmt, split=split, force=force)
    result(summary, f"{format_summary(summary)}\nsummary: {out / 'summary.json'}")


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export")
