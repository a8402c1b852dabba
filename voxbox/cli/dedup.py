"""CLI command: voxbox dedup (see voxbox.cli for conventions)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer


def dedup(
    inputs: List[str] = typer.Argument(..., help="Built datasets (folders, or URLs such as s3://... where a build "
                                                 "wrote them) and/or manifests, e.g. one per corpus."),
    out: Path = typer.Option(..., "--out", "-o", help="Report JSON to write: duplicate groups with their evidence "
                                                "(use with `voxbox build --dedup`)."),
    manifest_out: Optional[Path] = typer.Option(
        None, "--manifest-out", help="Also write every input record, with duplicate_of set, to this manifest."),
    priority: Optional[str] = typer.Option(
        None, "--priority", help="Comma-separated corpora, the copy to keep first. Default: libritts_r, libritts, "
                                 "hifitts, vctk, ljspeech, esd, emovdb, cremad, ravdess, aishell3, librispeech, "
                                 "mls_english; unlisted corpora after them, alphabetically."),
    text_threshold: float = typer.Option(0.8, "--text-threshold", min=0.0, max=1.0,
                                         help="MinHash Jaccard of normalised-text 5-grams for a candidate pair."),
    min_cosine: float = typer.Option(0.85, "--min-cosine", min=-1.0, max=1.0,
                                     help="Speaker-embedding cosine that confirms a text candidate."),
    duration_tolerance: float = typer.Option(0.5, "--duration-tolerance", min=0.0,
                                             help="Seconds two copies may differ (or 10%, whichever is more)."),
    embedding_model: str = typer.Option("ge2e", "--embedding-model", help="Embedding backend: ge2e or ecapa:DIR."),
    device: str = typer.Option("cpu", "--device", help="Torch device for the embeddings."),
    max_bucket: int = typer.Option(
        1000, "--max-bucket", min=2, help="Records compared within one LSH bucket (one text-band key); a bigger "
                                          "bucket (the same phrase read by thousands) is cut to its first ones and "
                                          "counted in the report's capped_buckets."),
    work_dir: Optional[Path] = typer.Option(
        None, "--work-dir", help="Folder for the on-disk sorts (removed after; about 1.7 kB per record, ~80 GB "
                                 "for 47 M records). Default: the system temp folder ($TMPDIR)."),
) -> None:
    """Find the same utterance within and across corpora: exact audio hash, then similar
    normalised text (MinHash LSH) confirmed by speaker-embedding cosine and duration.
    Reads the inputs once (twice when there are text candidates: their embeddings) and
    sorts on disk, so memory stays flat however many records there are."""
    from voxbox.labels.dedup import DEFAULT_PRIORITY, DedupConfig, duplicate_map, find_duplicates, mark_duplicates
    from voxbox.labels.inputs import records
    from voxbox.manifest import ManifestWriter

    prio = tuple(p.strip().lower() for p in priority.split(",") if p.strip()) if priority else DEFAULT_PRIORITY
    cfg = DedupConfig(text_threshold=text_threshold, min_cosine=min_cosine, duration_tolerance_s=duration_tolerance,
                      embedding_model=embedding_model, device=device, max_bucket=max_bucket,
                      work_dir=str(work_dir) if work_dir is not None else None)
    report = find_duplicates(inputs, cfg, prio)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if manifest_out is not None:
        dups = duplicate_map(report)
        with ManifestWriter(manifest_out) as w:
            for src in inputs:
                w.write_all(mark_duplicates(records(src), dups))
    from voxbox.cli.output import result

    pairs = ", ".join(f"{k}: {v}" for k, v in report["by_corpus_pair"].items()) or "none"
    summary = {k: report[k] for k in ("records", "duplicates", "text_candidates", "by_corpus_pair", "unreadable",
                                      "capped_buckets")}
    capped = report["capped_buckets"]
    note = (f"; {capped['buckets']} LSH buckets over --max-bucket {max_bucket}: {capped['records']} records in them "
            "not compared there" if capped["buckets"] else "")
    result({"out": str(out), "groups": len(report["groups"]), **summary},
           f"{report['duplicates']} duplicates in {len(report['groups'])} groups among {report['records']} "
           f"records ({pairs}); {report['text_candidates']} text candidates checked{note} -> {out}")


def register(app: typer.Typer) -> None:
    app.command("dedup")(dedup)
