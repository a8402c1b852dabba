"""CLI command: voxbox publish (see voxbox.cli for conventions)."""

from typing import Optional

import typer



_TOKEN_HELP = ("Hugging Face token with write access. Default: $HF_TOKEN, else the token stored by "
               "`hf auth login`. Never printed.")


def publish(
    dataset_dir: str = typer.Argument(..., help="A built dataset folder (the output of `voxbox build`) on this "
                                      "machine. To publish a build in object storage, build with --out "
                                      "hf://datasets/OWNER/NAME/PATH instead, or copy it here first."),
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
    from voxbox.release.publish import publish as run_publish

    import dataclasses

    from voxbox.cli.output import result

    res = run_publish(dataset_dir, repo_id, private=private, revision=revision, token=token, endpoint=endpoint,
                      batch_files=batch_files, card=not no_card, dry_run=dry_run)
    result(dataclasses.asdict(res), res.summary())


def register(app: typer.Typer) -> None:
    app.command("publish")(publish)
