"""CLI command group: voxbox export (sparktts); see voxbox.cli for conventions."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

export_app = typer.Typer(help="Export a built dataset as training data for other tools.", no_args_is_help=True)


@export_app.command("sparktts")
def export_sparktts_cmd(
    dataset: Path = typer.Argument(..., help="Built dataset folder (output of voxbox build) with BiCodec tokens."),
    out: Path = typer.Option(..., "--out", help="Output folder: sparktts-<split>-NNNNNN.<ext> files + summary.json."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl or parquet."),
    tasks: str = typer.Option("tts,controllable_tts", "--tasks",
                              help="Comma-separated examples to write: tts (zero-shot), controllable_tts."),
    tokenizer: Optional[Path] = typer.Option(None, "--tokenizer", help="Spark-TTS tokenizer folder (LLM/ or a model "
                                             "folder): also write prompt_ids/target_ids."),
    shard_size: int = typer.Option(50_000, "--shard-size", help="Examples per output file."),
    boundaries: Optional[Path] = typer.Option(None, "--boundaries", help="Level boundaries JSON for records without "
                                              "stored levels (default: VoxBox's)."),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="Skip examples longer than this many ids "
                                             "(prompt + target; SparkVox trains with 1500). Needs --tokenizer."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier export in --out."),
) -> None:
    """Write Spark-TTS training examples for a built dataset.

    Two examples per record with tokens: zero-shot TTS, and controllable TTS with the pitch/speed value chain. Skipped records are counted by reason.
    """
    from voxbox.sparktts.export import export_sparktts, format_export_summary

    summary = export_sparktts(dataset, out, fmt=fmt, tasks=[t.strip() for t in tasks.split(",") if t.strip()],
                              tokenizer_dir=tokenizer, shard_size=shard_size, overwrite=overwrite,
                              boundaries=boundaries, max_tokens=max_tokens)
    typer.echo(format_export_summary(summary))
    typer.echo(f"summary: {out / 'summary.json'}")


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export")
