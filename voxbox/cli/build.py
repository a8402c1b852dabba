"""CLI command: voxbox build (see voxbox.cli for conventions)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer




def _echo(msg: str) -> None:
    typer.echo(msg, err=True)


def build_command(
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (created; rerun the same command to resume)."),
    corpus: Optional[str] = typer.Option(None, "--corpus", "-c",
                                         help="Corpus recipe to build from (see `voxbox corpora`), e.g. libritts."),
    subset: Optional[List[str]] = typer.Option(None, "--subset", "-s",
                                               help="Corpus subset(s), repeatable, e.g. dev-clean. Default: all found."),
    root: Optional[Path] = typer.Option(None, "--root",
                                        help="Local copy of the corpus. Without it the corpus is downloaded."),
    download_dir: Optional[Path] = typer.Option(
        None, "--download-dir",
        help="Where to download when no --root is given. Default: $VOXBOX_DATA/<corpus> or "
             "~/.cache/voxbox/corpora/<corpus>."),
    mirror: Optional[str] = typer.Option(None, "--mirror", help="Download mirror base URL (default: the catalog's)."),
    manifest: Optional[Path] = typer.Option(
        None, "--manifest", "-m",
        help="Build from a prepared manifest (.jsonl/.jsonl.gz/.parquet; its .rejects.jsonl is carried over) "
             "instead of --corpus."),
    pipeline: Optional[str] = typer.Option(
        None, "--pipeline", "-p",
        help="Pipeline YAML file, or the name of a shipped one. Default: the shipped 'voxbox' pipeline "
             "(annotate, tokenize when --model-dir is given)."),
    name: Optional[str] = typer.Option(None, "--name",
                                       help="Shard file prefix NAME-000000.tar. Default: the pipeline's name."),
    formats: Optional[List[str]] = typer.Option(
        None, "--format", "-f", help="Output format, repeatable: webdataset, parquet. Default: the pipeline's (both)."),
    audio_format: Optional[str] = typer.Option(
        None, "--audio-format", help="flac (lossless, fixed encoding) or original (source bytes). Default: flac."),
    shard_mb: Optional[float] = typer.Option(None, "--shard-mb",
                                             help="Target shard size in MB (estimated from headers). Default: 500."),
    shard_records: Optional[int] = typer.Option(None, "--shard-records",
                                                help="At most this many records per shard. Default: 100000."),
    stages: Optional[str] = typer.Option(
        None, "--stages", help="Comma-separated subset of the pipeline's stages to run, e.g. 'annotate'; "
                               "'' runs none (audio and records only). Default: all."),
    model_dir: Optional[Path] = typer.Option(
        None, "--model-dir",
        help="BiCodec model folder for the tokenize stage. Without it tokenization is skipped (and said so)."),
    device: Optional[str] = typer.Option(None, "--device", help="Device for model stages (cpu, cuda, cuda:1). Default: cpu."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size",
                                             help="Records per task handed to a worker. Default: 16."),
    engine: str = typer.Option("local", "--engine", help="local (worker processes) or ray (Ray Data; needs the "
                                                          "ray extra of voxbox)."),
    workers: Optional[int] = typer.Option(
        None, "--workers", "-j", help="Worker processes (local) or CPU actors/tasks (ray). Default: CPU count."),
    ray_address: Optional[str] = typer.Option(
        None, "--ray-address", help="Ray cluster to join (e.g. ray://head:10001 or 'auto'). Default: $RAY_ADDRESS, "
                                    "else a local Ray instance."),
    force: bool = typer.Option(False, "--force",
                               help="Rebuild an --out folder made from another pipeline or input (deletes its shards)."),
    dedup_report: Optional[Path] = typer.Option(
        None, "--dedup", help="A `voxbox dedup` report: of each duplicate group keep one record (by "
                              "--dedup-priority) and send the others to rejects.jsonl as 'duplicate'."),
    dedup_priority: Optional[str] = typer.Option(
        None, "--dedup-priority", help="Comma-separated corpora, the copy to keep first. Default: the report's "
                                       "choice (voxbox dedup --priority; see `voxbox dedup --help`)."),
) -> None:
    """Build a dataset: prepare -> annotate -> tokenize -> WebDataset/Parquet shards.

    Resumable: kill it at any moment and rerun the same command; finished shards are
    verified by checksum and kept. The result is identical to an uninterrupted run.
    """
    import os

    from voxbox.cli import command_line
    from voxbox.build.run import build, check_out_dir, corpus_source, load_pipeline, manifest_source
    from voxbox.errors import VoxboxError
    from voxbox.shards.writer import format_build_summary

    if (corpus is None) == (manifest is None):
        raise VoxboxError("give exactly one of --corpus or --manifest")
    stage_list = None if stages is None else [s.strip() for s in stages.split(",") if s.strip()]
    pipe = load_pipeline(pipeline, name=name, formats=formats or None, audio_format=audio_format,
                         shard_mb=shard_mb, shard_records=shard_records, batch_size=batch_size,
                         model_dir=model_dir, device=device, stages=stage_list)
    if model_dir is not None and not Path(model_dir).is_dir():
        raise VoxboxError(f"{model_dir}: model folder not found")
    check_out_dir(out, force)
    if corpus is not None:
        source = corpus_source(corpus, subset, root=root, download_dir=download_dir, mirror=mirror, log=_echo)
    else:
        source = manifest_source(manifest)
    if dedup_report is not None:
        from voxbox.labels.dedup import drop_duplicates, duplicate_map, load_report

        prio = [p.strip().lower() for p in dedup_priority.split(",") if p.strip()] if dedup_priority else None
        source = drop_duplicates(source, duplicate_map(load_report(dedup_report), prio))
    elif dedup_priority:
        raise VoxboxError("--dedup-priority needs --dedup REPORT")
    index = build(source, out, pipe, engine=engine, workers=(os.cpu_count() or 1) if workers is None else workers, force=force,
                  ray_address=ray_address, command=command_line(), log=_echo)
    typer.echo(format_build_summary(index))
    typer.echo(f"built {out}")


def register(app: typer.Typer) -> None:
    app.command("build")(build_command)
