"""CLI commands: publish, report, fetch-model (see voxbox.cli for conventions)."""

from pathlib import Path
from typing import Optional

import typer

_TOKEN_HELP = ("Hugging Face token with write access. Default: $HF_TOKEN, else the token stored by "
               "`hf auth login`. Never printed.")


def publish(
    dataset_dir: Path = typer.Argument(..., help="A built dataset folder (the output of `voxbox build`)."),
    repo_id: str = typer.Option(..., "--repo-id", help="Dataset repo to publish to, OWNER/NAME; created if missing."),
    private: bool = typer.Option(False, "--private", help="Create the repo as private (an existing repo keeps "
                                 "its visibility). Default: public."),
    revision: Optional[str] = typer.Option(None, "--revision", help="Branch to commit to; created from main if "
                                           "missing. Default: main."),
    token: Optional[str] = typer.Option(None, "--token", help=_TOKEN_HELP, show_default=False),
    endpoint: Optional[str] = typer.Option(None, "--endpoint", help="Hub URL. Default: $HF_ENDPOINT, else "
                                           "https://huggingface.co."),
    batch_files: int = typer.Option(50, "--batch-files", min=1, help="Shard files per commit; a rerun after an "
                                    "interruption resumes from the first batch not committed."),
    no_card: bool = typer.Option(False, "--no-card", help="Do not generate or upload README.md (keep the "
                                 "repo's card). Default: generate it."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Compare with the Hub and say what would be uploaded "
                                 "or deleted; change nothing (no token needed for a public or new repo)."),
) -> None:
    """Upload a built dataset (shards, index, metadata and a generated dataset card) to the Hub.

    Only files missing or different on the Hub (compared by hash) are uploaded, so
    rerunning after an interruption resumes, and republishing an unchanged folder
    uploads nothing.
    """
    from ..publish import publish as run_publish

    result = run_publish(dataset_dir, repo_id, private=private, revision=revision, token=token, endpoint=endpoint,
                         batch_files=batch_files, card=not no_card, dry_run=dry_run)
    typer.echo(result.summary())


def report(
    dataset_dir: Path = typer.Argument(..., help="A built dataset folder (the output of `voxbox build`)."),
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="HTML file to write."),
    title: Optional[str] = typer.Option(None, "--title", help="Page title. Default: 'voxbox report: NAME'."),
) -> None:
    """Write one self-contained HTML page of plots and tables about a built dataset.

    Pitch per gender and speed per language with the five-level boundaries, durations,
    hours per corpus/gender/language, the level grid, BiCodec token statistics, rejects
    by reason, and the slowest and oddest records worth listening to.
    """
    from ..report import write_report

    path = write_report(dataset_dir, out, title=title)
    typer.echo(f"wrote {path}")


def fetch_model(
    repo_id: str = typer.Option("SparkAudio/Spark-TTS-0.5B", "--repo-id", help="Model repo on the Hub."),
    dest: Path = typer.Option(Path("pretrained_models/Spark-TTS-0.5B"), "--dest", help="Folder to download into; "
                              "a rerun resumes and skips finished files."),
    revision: Optional[str] = typer.Option(None, "--revision", help="Branch, tag or commit. Default: main."),
    tokenizer_only: bool = typer.Option(False, "--tokenizer-only", help="Skip LLM/ (about 2 GB): BiCodec and "
                                        "wav2vec2 are all `voxbox tokenize` needs. Default: everything."),
    token: Optional[str] = typer.Option(None, "--token", help="Hugging Face token for gated or private repos. "
                                        "Default: $HF_TOKEN or the stored login. Never printed.",
                                        show_default=False),
    endpoint: Optional[str] = typer.Option(None, "--endpoint", help="Hub URL. Default: $HF_ENDPOINT, else "
                                           "https://huggingface.co."),
) -> None:
    """Download a Spark-TTS model folder and check it has the official layout
    (config.yaml, BiCodec/, LLM/, wav2vec2-large-xlsr-53/)."""
    from ..hub import fetch_model as run_fetch

    path = run_fetch(repo_id, dest, revision=revision, token=token, endpoint=endpoint,
                     tokenizer_only=tokenizer_only)
    typer.echo(f"{repo_id} is ready in {path}")


def register(app: typer.Typer) -> None:
    app.command("publish")(publish)
    app.command("report")(report)
    app.command("fetch-model")(fetch_model)
