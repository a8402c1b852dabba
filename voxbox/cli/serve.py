"""CLI command: voxbox serve (see voxbox.cli for conventions)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def _default_table_dir() -> Path:
    import os

    base = os.environ.get("VOXBOX_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "voxbox") / "serve"


def serve_command(
    dataset_dir: str = typer.Argument(..., help="A built dataset folder (the output of `voxbox build`) on this "
                                      "machine (a dataset in object storage: copy it here first)."),
    model_dir: Optional[Path] = typer.Option(
        None, "--model-dir", "-m",
        help="Spark-TTS model folder: BiCodec/ gives the reconstruction of each record from its stored tokens; "
             "LLM/ as well gives the synthesis tab. Default: none (both tabs off)."),
    host: str = typer.Option("127.0.0.1", "--host",
                             help="Address to listen on. Anything but a loopback address needs --auth-token."),
    port: int = typer.Option(7860, "--port", help="Port to listen on (0 picks a free one and prints it)."),
    auth_token: Optional[str] = typer.Option(
        None, "--auth-token", envvar="VOXBOX_SERVE_TOKEN",
        help="Require this token on every request (open the page once with ?token=...). "
             "Also read from $VOXBOX_SERVE_TOKEN, which keeps it out of the process list."),
    corrections: Optional[Path] = typer.Option(
        None, "--corrections",
        help="Where corrections are appended. Default: DATASET_DIR/corrections.jsonl (use this when the "
             "dataset folder is read-only)."),
    table_dir: Optional[Path] = typer.Option(
        None, "--table-dir",
        help="Where the query table of the records (a DuckDB file, ~40 MB per million records) is kept "
             "between runs. "
             "Default: $VOXBOX_CACHE/serve or ~/.cache/voxbox/serve."),
    device: str = typer.Option("cpu", "--device", help="Torch device for the models: cpu, cuda, cuda:N."),
    max_new_tokens: int = typer.Option(
        3000, "--max-new-tokens", help="Most tokens Spark-TTS generates per synthesis (50 per second of audio)."),
) -> None:
    """Explore, listen to, correct and synthesise from a built dataset in the browser.

    An overview of the statistics, a records table filtered and sorted on the server,
    each record with its audio, waveform, pitch track, provenance and Spark-TTS prompt,
    corrections saved to corrections.jsonl (apply them with `voxbox build --corrections`),
    the rejects, and with --model-dir BiCodec reconstructions and Spark-TTS synthesis.
    Works offline; binds 127.0.0.1 unless told otherwise.
    """
    from voxbox.errors import VoxboxError
    from voxbox.serve import Settings, serve

    if not 0 <= port <= 65535:
        raise VoxboxError(f"--port must be 0..65535, got {port}")
    if max_new_tokens < 1:
        raise VoxboxError(f"--max-new-tokens must be at least 1, got {max_new_tokens}")
    settings = Settings(dataset_dir=dataset_dir, model_dir=model_dir, device=device, host=host, port=port,
                        auth_token=auth_token or None, table_dir=table_dir or _default_table_dir(),
                        corrections=corrections, max_new_tokens=max_new_tokens)
    from voxbox.cli.output import notice, result

    info = {}

    def ready(url: str, records: int) -> None:
        # The address is what this command gives, so it shows even with -q (on stderr:
        # stdout is the final result, printed when the server stops).
        info.update(url=url, dataset=str(dataset_dir), records=records)
        typer.echo(f"serving {dataset_dir} ({records:,} records) at {url}"
                   + (" (open it once with ?token=YOUR_TOKEN)" if auth_token else "") + "; Ctrl+C stops", err=True)

    serve(settings, log=notice, ready=ready)
    result({"stopped": True, **info}, f"stopped serving {info.get('url', dataset_dir)}")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
