"""CLI command: voxbox tokenize (see voxbox.cli for conventions)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from voxbox.cli.options import allow_absolute_paths_option, engine_option, ray_address_option


def tokenize(
    manifest: Path = typer.Argument(..., help="Input manifest (.jsonl, .jsonl.gz or .parquet), "
                                              "e.g. from `voxbox prepare` or `voxbox annotate`."),
    model_dir: Path = typer.Option(..., "--model-dir", "-m",
                                   help="Spark-TTS model folder (config.yaml, BiCodec/, "
                                        "wav2vec2-large-xlsr-53/), e.g. from `voxbox fetch-model`."),
    out: Path = typer.Option(..., "--out", "-o",
                             help="Output manifest (.jsonl, .jsonl.gz or .parquet) with global_tokens and "
                                  "semantic_tokens filled; rejected records go to <stem>.rejects.jsonl next to "
                                  "it, after the input's own rejects (carried forward)."),
    device: str = typer.Option("cpu", "--device", help="Torch device: cpu or cuda (cuda:N)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b", min=1,
                                             help="Clips per padded batch. Tokens do not depend on it. "
                                                  "Default: 16 on CUDA, 1 on CPU (where batching is "
                                                  "slower)."),
    dtype: str = typer.Option("float32", "--dtype",
                              help="float32 (exact, default) or bfloat16 (CUDA only, faster, tokens may "
                                   "differ slightly). float16 is refused: it breaks the model."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Tokenize only the first N records."),
    workers: int = typer.Option(1, "--workers", "-j", min=1,
                                help="Worker processes (local) or actors (ray); each loads the model."),
    engine: str = engine_option(),
    ray_address: Optional[str] = ray_address_option(),
    allow_absolute_paths: bool = allow_absolute_paths_option(),
) -> None:
    """Add BiCodec tokens (32 global + 50 semantic per second) to every record, exactly as the
    official Spark-TTS tokenizer computes them. Interrupted runs resume where they stopped when
    rerun with the same arguments (finished work is kept in OUT.work/)."""
    from voxbox.cli.output import notice
    from voxbox.tokenize.stage import tokenize_manifest

    s = tokenize_manifest(manifest, out, model_dir, device=device, batch_size=batch_size, dtype=dtype,
                          limit=limit, engine=engine, workers=workers, ray_address=ray_address,
                          allow_absolute_paths=allow_absolute_paths, log=notice)
    resumed = f" (resumed after {s['resumed_from']})" if s["resumed_from"] else ""
    from voxbox.cli.output import result

    result(s, f"tokenized {s['records']} records{resumed} -> {out}; {s['audio_seconds']:.1f} audio-s "
              f"in {s['wall_seconds']:.1f} s = {s['audio_seconds_per_second']:.2f} audio-s/s; "
              f"{s['reject_summary']}")


def register(app: typer.Typer) -> None:
    app.command("tokenize")(tokenize)
