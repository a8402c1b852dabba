"""CLI command: voxbox detokenize (see voxbox.cli for conventions)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer




def detokenize(
    source: Path = typer.Argument(..., help="A token file (JSON with global_tokens and semantic_tokens) "
                                            "or, with --index, a tokenized manifest."),
    model_dir: Path = typer.Option(..., "--model-dir", "-m", help="Spark-TTS model folder."),
    out: Path = typer.Option(..., "--out", "-o", help="Waveform to write: .wav or .flac (16 kHz, 16-bit PCM)."),
    index: Optional[str] = typer.Option(None, "--index", "-i",
                                        help="Record to decode when SOURCE is a manifest: its index field "
                                             "or its 0-based position."),
    device: str = typer.Option("cpu", "--device", help="Torch device: cpu or cuda."),
) -> None:
    """Decode BiCodec tokens back to a 16 kHz waveform (to listen to what the tokens keep)."""
    from voxbox.tokenize.stage import detokenize_to_wav

    if index is None:
        r = detokenize_to_wav(out, model_dir, token_file=source, device=device)
    else:
        r = detokenize_to_wav(out, model_dir, manifest=source, index=index, device=device)
    typer.echo(f"wrote {r['path']} ({r['seconds']} s) from {r['name']}")


def register(app: typer.Typer) -> None:
    app.command("detokenize")(detokenize)
