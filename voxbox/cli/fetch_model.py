"""CLI command: voxbox fetch-model (see voxbox.cli for conventions)."""

from pathlib import Path
from typing import Optional

import typer



def fetch_model(
    repo_id: str = typer.Option("SparkAudio/Spark-TTS-0.5B", "--repo-id", help="Model repo on the Hub."),
    model_dir: Path = typer.Option(Path("pretrained_models/Spark-TTS-0.5B"), "--model-dir", "-m",
                                   help="Model folder to download into (what --model-dir of tokenize, build and "
                                        "synth then names); a rerun resumes and skips finished files."),
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
    from voxbox.release.hub import fetch_model as run_fetch

    path = run_fetch(repo_id, model_dir, revision=revision, token=token, endpoint=endpoint,
                     tokenizer_only=tokenizer_only)
    typer.echo(f"{repo_id} is ready in {path}")


def register(app: typer.Typer) -> None:
    app.command("fetch-model")(fetch_model)
