"""CLI command: voxbox prepare (see voxbox.cli for conventions)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from voxbox.cli.options import cache_option


def prepare(
    corpus: str = typer.Argument(..., help="Corpus recipe name (see `voxbox corpora`), `folder` for your own "
                                           "recordings, or `lhotse` for lhotse manifests."),
    root: Optional[str] = typer.Option(None, "--root", help="The corpus: a local folder (the one you "
                                       "downloaded/extracted into, or the corpus folder itself) or a remote one, "
                                       "read in place: hf://datasets/OWNER/NAME/PATH, s3://BUCKET/PATH or any "
                                       "fsspec URL. Not needed for `sample` (ships with voxbox); for `lhotse`, "
                                       "where relative audio paths resolve (default: the working folder)."),
    out: Path = typer.Option(..., "--out", "-o", help="Manifest to write (.jsonl, .jsonl.gz or .parquet). "
                                                      "Rejected files go to <stem>.rejects.jsonl next to it "
                                                      "(m.jsonl.gz -> m.rejects.jsonl)."),
    subset: List[str] = typer.Option([], "--subset", "-s", help="Subset(s) to include, repeatable. Default: every "
                                                                "subset found under --root."),
    option: List[str] = typer.Option([], "--option", "-O", help="Recipe option KEY=VALUE, repeatable (e.g. "
                                                                "-O mic=mic2 for vctk; `voxbox corpora NAME` lists "
                                                                "them). Default: none."),
    workers: int = typer.Option(4, "--workers", "-j", min=1, help="Threads reading audio headers."),
    segment: Optional[str] = typer.Option(None, "--segment", help="vad: cut each recording into utterances with "
                                          "Silero VAD, one span record per segment (recipes with a segment option: "
                                          "folder; = -O segment=vad; tune with -O vad_min_duration=1 "
                                          "-O vad_max_duration=20 -O vad_padding=0.2 -O vad_threshold=0.5 "
                                          "-O vad_min_silence=0.3). Default: one record per file."),
    cache: Optional[Path] = cache_option(),
) -> None:
    """Turn a local corpus copy into a manifest of utterance records (reads audio headers only)."""
    from voxbox.cli.build import check_out_path, parse_options, use_cache
    from voxbox.cli.output import result
    from voxbox.errors import VoxboxError
    from voxbox.sources.corpora import default_root
    from voxbox.sources.prepare import prepare_manifest

    check_out_path(out)
    use_cache(cache)
    root = root if root is not None else default_root(corpus)
    if root is None:
        raise VoxboxError(f"{corpus}: give --root, the folder holding the corpus (`voxbox download {corpus}` "
                          "fetches it)")
    options = parse_options(option)
    if segment is not None:
        options["segment"] = segment
    summary = prepare_manifest(corpus, root, out, subsets=subset or None,
                               options=options, workers=workers,
                               log=lambda msg: typer.echo(msg, err=True))
    result({"corpus": summary.corpus, "manifest": str(summary.manifest), "rejects": str(summary.rejects),
            "records": summary.records, "rejected": summary.rejected, "audio_seconds": summary.audio_seconds,
            "by_reason": summary.by_reason, "skipped": summary.skipped}, summary.line())


def register(app: typer.Typer) -> None:
    app.command("prepare")(prepare)
