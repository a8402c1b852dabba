"""CLI command: voxbox build (see voxbox.cli for conventions)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from voxbox.cli.options import allow_absolute_paths_option, cache_option, engine_option, ray_address_option


def use_cache(cache: Optional[Path]) -> None:
    """--cache: the remote block cache for this run and the worker processes it starts."""
    if cache is not None:
        from voxbox.storage import set_cache_dir

        set_cache_dir(cache)


def _echo(msg: str) -> None:
    from voxbox.cli.output import notice

    notice(msg)


def parse_options(pairs: Optional[List[str]]) -> dict:
    """``--option KEY=VALUE`` pairs -> recipe options (``voxbox corpora NAME`` lists them)."""
    from voxbox.errors import VoxboxError

    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise VoxboxError(f"--option wants KEY=VALUE, got {pair!r}")
        out[key.strip().replace("-", "_")] = value
    return out


def check_out_path(out: Path) -> None:
    """``-o`` once meant --option in prepare: an --out that reads KEY=VALUE is that mistake."""
    import re

    from voxbox.errors import VoxboxError

    if re.fullmatch(r"[A-Za-z_][\w-]*=.*", str(out)) and not out.exists():
        raise VoxboxError(f"--out {out}: looks like a recipe option; give it as --option {out} (-O), "
                          "and --out/-o the output")


def build_command(
    out: Optional[str] = typer.Option(
        None, "--out", "-o", help="Output folder (created; rerun the same command to resume), or an object-store "
                                  "URL such as s3://bucket/prefix (any fsspec URL; shards are staged locally and "
                                  "uploaded one by one). Required, except with --dry-run."),
    corpus: Optional[str] = typer.Option(None, "--corpus", "-c",
                                         help="Corpus recipe to build from (see `voxbox corpora`), e.g. libritts."),
    subset: Optional[List[str]] = typer.Option(None, "--subset", "-s",
                                               help="Corpus subset(s), repeatable, e.g. dev-clean. Default: all found."),
    root: Optional[str] = typer.Option(
        None, "--root", help="The corpus: a local folder, or a remote one read in place "
                             "(hf://datasets/OWNER/NAME/PATH, s3://BUCKET/PATH, any fsspec URL). Without it the "
                             "corpus is downloaded (the sample corpus ships with voxbox; lhotse manifests: where "
                             "relative audio paths resolve, default the working folder)."),
    cache: Optional[Path] = cache_option(),
    download_dir: Optional[Path] = typer.Option(
        None, "--download-dir",
        help="Where to download when no --root is given. Default: $VOXBOX_DATA/<corpus> or "
             "~/.cache/voxbox/corpora/<corpus>."),
    mirror: Optional[str] = typer.Option(None, "--mirror", help="Download mirror base URL (default: the catalog's)."),
    option: Optional[List[str]] = typer.Option(
        None, "--option", "-O", help="Recipe option KEY=VALUE, repeatable (e.g. -O mic=mic2 for vctk; "
                                     "`voxbox corpora NAME` lists them)."),
    manifest: Optional[List[Path]] = typer.Option(
        None, "--manifest",
        help="Build from a prepared manifest (.jsonl/.jsonl.gz/.parquet; its .rejects.jsonl is carried over) "
             "instead of --corpus; or from lhotse manifests: a CutSet (cuts.jsonl.gz), or --manifest "
             "recordings --manifest supervisions."),
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
        None, "--model-dir", "-m",
        help="BiCodec model folder for the tokenize stage. Without it tokenization is skipped (and said so)."),
    device: Optional[str] = typer.Option(None, "--device", help="Device for model stages (cpu, cuda, cuda:1). Default: cpu."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size",
                                             help="Records per task handed to a worker. Default: 16."),
    engine: str = engine_option(),
    workers: Optional[int] = typer.Option(
        None, "--workers", "-j", help="Worker processes (local), or shard tasks at once over the whole Ray "
                            "cluster (ray). Default: CPU count. With --device cuda the tokenizer runs once, "
                            "in this process, fed by the workers (one model on the GPU)."),
    ray_address: Optional[str] = ray_address_option(),
    corrections: Optional[Path] = typer.Option(
        None, "--corrections",
        help="Label corrections to apply (the corrections.jsonl that `voxbox serve` writes): a corrected gender, "
             "age or emotion becomes a native label, a corrected text is re-annotated; each corrected record is "
             "marked in extra.corrected and the dataset card counts them."),
    allow_absolute_paths: bool = allow_absolute_paths_option(),
    force: bool = typer.Option(False, "--force",
                               help="Rebuild an --out folder made from another pipeline or input (deletes its shards)."),
    dedup_report: Optional[Path] = typer.Option(
        None, "--dedup", help="A `voxbox dedup` report: of each duplicate group keep one record (by "
                              "--dedup-priority) and send the others to rejects.jsonl as 'duplicate'."),
    dedup_priority: Optional[str] = typer.Option(
        None, "--dedup-priority", help="Comma-separated corpora, the copy to keep first. Default: the report's "
                                       "choice (voxbox dedup --priority; see `voxbox dedup --help`)."),
    dry_run: bool = typer.Option(
        False, "--dry-run",
        help="Prepare and plan only: print the number of shards, records, hours and the largest shard, then stop. "
             "Processes no audio (from --manifest it does not even open or stat the audio files) and writes "
             "nothing to --out; scratch files go to a temporary folder ($TMPDIR) and are removed."),
) -> None:
    """Build a dataset: prepare -> annotate -> tokenize -> WebDataset/Parquet shards.

    Resumable: kill it at any moment and rerun the same command; finished shards are
    verified by checksum and kept. The result is identical to an uninterrupted run.
    """
    import os

    from voxbox.build.guards import check_out_dir
    from voxbox.build.pipeline import load_pipeline
    from voxbox.build.run import build
    from voxbox.cli import command_line
    from voxbox.cli.output import result
    from voxbox.errors import VoxboxError
    from voxbox.shards.writer import format_build_summary

    if (corpus is None) == (not manifest):
        raise VoxboxError("give exactly one of --corpus or --manifest")
    if out is None and not dry_run:
        raise VoxboxError("give --out (-o), the output folder (or --dry-run to plan without building)")
    from voxbox.storage.output import is_output_url

    if out is not None and not is_output_url(out):
        out = Path(out)
        check_out_path(out)
    use_cache(cache)
    stage_list = None if stages is None else [s.strip() for s in stages.split(",") if s.strip()]
    pipe = load_pipeline(pipeline, name=name, formats=formats or None, audio_format=audio_format,
                         shard_mb=shard_mb, shard_records=shard_records, batch_size=batch_size,
                         model_dir=model_dir, device=device, stages=stage_list)
    if model_dir is not None and not Path(model_dir).is_dir():
        raise VoxboxError(f"{model_dir}: model folder not found")
    if not dry_run and isinstance(out, Path):
        check_out_dir(out, force)
    fixes = None
    if corrections is not None:
        from voxbox.build.corrections import load_corrections

        fixes = load_corrections(corrections)  # a bad file stops here, before any download or work
    dups = _duplicates(dedup_report, dedup_priority)  # a bad report stops here too
    source, duplicate = _source(corpus, manifest, subset, root, download_dir, mirror, parse_options(option),
                     (out,) if isinstance(out, Path) else (), allow_absolute_paths)
    if dups is not None:
        from voxbox.labels.dedup import drop_duplicates

        source = drop_duplicates(source, dups)
    if fixes is not None:
        from voxbox.build.corrections import corrected_source

        source, _ = corrected_source(source, fixes, log=_echo, where=str(corrections))
    if dry_run:
        from voxbox.build.dryrun import dry_run as plan_build, format_dry_run

        summary = plan_build(source, pipe, duplicate=duplicate)
        result(summary, format_dry_run(summary))
        return
    index = build(source, out, pipe, engine=engine, workers=(os.cpu_count() or 1) if workers is None else workers,
                  force=force, ray_address=ray_address, command=command_line(), log=_echo, duplicate=duplicate)
    text = "\n".join([format_build_summary(index), _tokens_line(pipe), f"built {out}"])
    result({"out": str(out), "tokens": not pipe.skipped_stage("tokenize"), **index}, text)


def _duplicates(report, priority):
    """index -> (kept index, evidence) of the records --dedup drops, or None."""
    from voxbox.errors import VoxboxError

    if report is None:
        if priority:
            raise VoxboxError("--dedup-priority needs --dedup REPORT")
        return None
    from voxbox.labels.dedup import duplicate_map, load_report

    prio = [p.strip().lower() for p in priority.split(",") if p.strip()] if priority else None
    return duplicate_map(load_report(report), prio)


def _source(corpus, manifests, subset, root, download_dir, mirror, options, ignore, allow_absolute_paths):
    """The build input: a corpus recipe (its scan leaves out the output folder, should it
    sit inside --root), voxbox manifests, or lhotse manifests; and the (reason, detail)
    of a repeated index. A recipe's repeated ids are found by the build's on-disk sort
    (no set of ids in memory) and rejected as the recipe would (``duplicate_id``)."""
    from voxbox.build.input import DUPLICATE_INDEX
    from voxbox.build.sources import corpus_source, lhotse_manifests, manifest_source
    from voxbox.errors import VoxboxError
    from voxbox.sources.corpora.base import DUPLICATE_ID

    if corpus is not None:
        return corpus_source(corpus, subset, root=root, download_dir=download_dir, mirror=mirror, log=_echo,
                             options=options, ignore=ignore, dedupe=False), DUPLICATE_ID
    lhotse = lhotse_manifests(manifests)
    if lhotse is not None:
        return corpus_source("lhotse", subset, root=root, log=_echo, options={**options, **lhotse},
                             dedupe=False), DUPLICATE_ID
    if len(manifests) != 1 or options:
        raise VoxboxError("--manifest: one voxbox manifest (recipe --option values apply to --corpus)")
    return manifest_source(manifests[0], allow_absolute_paths=allow_absolute_paths), DUPLICATE_INDEX


def _tokens_line(pipe) -> str:
    """Whether the shards carry BiCodec tokens: the first thing a Spark-TTS user checks."""
    why = pipe.skipped_stage("tokenize")
    if why is None and any(s["stage"] == "tokenize" for s in pipe.stages):
        return "BiCodec tokens added to every record (global_tokens, semantic_tokens)"
    return f"no BiCodec tokens: tokenize {'skipped (' + why + ')' if why else 'not in the pipeline'}; " \
           "give --model-dir to add them"


def register(app: typer.Typer) -> None:
    app.command("build")(build_command)
