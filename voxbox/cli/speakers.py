"""CLI command: voxbox speakers (see voxbox.cli for conventions)."""

from __future__ import annotations

from pathlib import Path

import typer


def speakers(
    source: str = typer.Argument(..., help="A manifest (.jsonl/.jsonl.gz/.parquet) or a built dataset: a folder, "
                                           "or where a build wrote it (s3://..., hf://datasets/O/N[@REV]/PATH)."),
    out: Path = typer.Option(..., "--out", "-o", help="Manifest to write: every record, with predicted speaker ids."),
    threshold: float = typer.Option(0.2, "--threshold", min=0.0, max=2.0,
                                    help="Average-linkage cosine distance below which clusters merge. 0.2 "
                                         "(mean similarity 0.8) separates read-speech speakers; raise it for "
                                         "short, emotional clips, which scatter more."),
    relabel_all: bool = typer.Option(False, "--all", help="Cluster every record, also those with a corpus "
                                                          "speaker id. Default: only records without one."),
    embedding_model: str = typer.Option("ge2e", "--embedding-model",
                                        help="Embedding backend: ge2e or ecapa:DIR (a Spark-TTS folder)."),
    store: bool = typer.Option(True, "--embeddings/--no-embeddings",
                               help="Keep the computed embeddings in the output records."),
    max_exact: int = typer.Option(4000, "--max-exact", min=2,
                                  help="Clips clustered exactly at once; larger corpora are clustered in "
                                       "blocks, then the blocks' clusters again (memory ~ N^2 / 2 floats)."),
    device: str = typer.Option("cpu", "--device", help="Torch device for the embeddings."),
) -> None:
    """Predict speaker ids by clustering speaker embeddings (for corpora without speaker ids).

    Agglomerative clustering, average linkage, cosine distance, per corpus; ids are
    spk00000, spk00001, ... in order of first appearance, marked speaker_source=predicted.
    Then e.g. `voxbox annotate OUT --gender-by speaker`.
    """
    from voxbox.labels.speakers import predict_speakers

    s = predict_speakers(source, out, threshold=threshold, relabel_all=relabel_all, encoder_spec=embedding_model,
                         device=device, store_embeddings=store, max_exact=max_exact)
    from voxbox.cli.output import result

    per = ", ".join(f"{c or '(no corpus)'}: {n}" for c, n in s["clusters"].items()) or "none"
    result({"out": str(out), **s}, f"{s['clustered']} of {s['records']} records clustered into predicted "
                                   f"speakers ({per}); {s['failed']} without an embedding (null_reasons.speaker: "
                                   f"no_embedding) -> {out}")


def register(app: typer.Typer) -> None:
    app.command("speakers")(speakers)
