"""CLI command: voxbox annotate (see voxbox.cli for conventions)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from voxbox.cli.options import allow_absolute_paths_option, engine_option, ray_address_option


def _echo(msg: str) -> None:
    from voxbox.cli.output import notice

    notice(msg)


def annotate(
    manifest: Path = typer.Argument(..., help="Input manifest (.jsonl, .jsonl.gz or .parquet) from `voxbox prepare`."),
    out: Path = typer.Option(..., "--out", "-o", help="Output manifest (.jsonl, .jsonl.gz or .parquet); "
                                                     "rejected records go to <stem>.rejects.jsonl next to it, "
                                                     "after the input's own rejects (carried forward)."),
    workers: int = typer.Option(1, "--workers", "-j", min=1,
                                help="Worker processes (local) or actors/tasks (ray); each loads its own models."),
    engine: str = engine_option(),
    ray_address: Optional[str] = ray_address_option(),
    pitch_backend: str = typer.Option("world", "--pitch-backend",
                                      help="world (VoxBox's definition: WORLD DIO + StoneMask) or praat "
                                           "(Praat autocorrelation). Recorded per record; do not mix."),
    boundaries: Optional[Path] = typer.Option(None, "--boundaries",
                                              help="Level boundaries JSON from `voxbox levels`. "
                                                   "Default: VoxBox's own boundaries."),
    gender_model: str = typer.Option("builtin", "--gender-model",
                                     help="For records without a native gender: 'builtin' (the shipped "
                                          "classifier on the GE2E speaker embedding + robust F0, "
                                          "= voxbox-gender-ge2e-v1), 'voxbox-gender-f0-v1' (the earlier "
                                          "F0-only model), 'none' (leave unknown), a model JSON from "
                                          "`voxbox train-gender`, or a Hugging Face audio-classification "
                                          "model (local folder or Hub id)."),
    gender_by: str = typer.Option("clip", "--gender-by",
                                  help="clip: each clip's own prediction. speaker: every clip of a speaker "
                                       "(corpus speaker id or `voxbox speakers` cluster) gets the speaker's "
                                       "confidence-weighted vote; the clip's answer stays in gender_clip and "
                                       "speakers whose clips disagree are listed."),
    check_native: bool = typer.Option(True, "--check-native/--no-check-native",
                                      help="Also run the gender model on clips with a native gender and keep "
                                           "its answer in gender_clip, so `voxbox report` can show where the "
                                           "corpus labels and the model disagree per speaker."),
    embeddings: bool = typer.Option(False, "--embeddings",
                                    help="Store each clip's speaker embedding (unit vector, float16) in "
                                         "the record's 'embedding' field (for `voxbox speakers`, `dedup`, "
                                         "`train-*`)."),
    embedding_model: str = typer.Option("ge2e", "--embedding-model",
                                        help="Embedding backend for --embeddings: ge2e (Resemblyzer's "
                                             "pretrained GE2E, 256-d) or ecapa:DIR (BiCodec's ECAPA x-vector "
                                             "from a Spark-TTS model folder)."),
    gender_labels: Optional[str] = typer.Option(None, "--gender-labels",
                                                help="Label map for a Hugging Face gender model: "
                                                     "'LABEL_0=female,LABEL_1=male' or a JSON file. "
                                                     "Default: match the model's label names."),
    age_model: Optional[str] = typer.Option(None, "--age-model",
                                            help="Age-group model: a JSON from `voxbox train-age` or a Hugging "
                                                 "Face audio-classification model. Default: none (age stays "
                                                 "null unless native)."),
    age_labels: Optional[str] = typer.Option(None, "--age-labels", help="Label map for --age-model "
                                                                        "(onto Child, Teenager, Youth-Adult, "
                                                                        "Middle-aged, Elderly)."),
    emotion_model: Optional[str] = typer.Option(None, "--emotion-model",
                                                help="Emotion model: a JSON from `voxbox train-emotion` or a "
                                                     "Hugging Face audio-classification model. Default: none "
                                                     "(emotion is UNKNOWN unless native)."),
    emotion_labels: Optional[str] = typer.Option(None, "--emotion-labels",
                                                 help="Label map for --emotion-model (onto the 25 VoxBox "
                                                      "emotions, e.g. 'ang=ANGRY,neu=NEUTRAL')."),
    zh_numbers: str = typer.Option("voxbox", "--zh-numbers",
                                   help="Chinese digit reading: voxbox (as the release: 3+ digit numbers "
                                        "digit by digit, 100 -> 幺零零) or cardinal (100 -> 一百)."),
    asr_model: Optional[str] = typer.Option(None, "--asr-model",
                                            help="Hugging Face speech-recognition model (local folder or Hub id, "
                                                 "e.g. openai/whisper-small): records without text get its "
                                                 "transcript (text_source asr); records with text keep it and get "
                                                 "asr_text, asr_wer and asr_cer (filter stage rules wer_max, cer_max). "
                                                 "Default: none."),
    asr_batch_size: int = typer.Option(8, "--asr-batch-size", min=1, help="Clips per ASR model call."),
    device: str = typer.Option("cpu", "--device", help="Torch device for embeddings and Hugging Face models "
                                                       "(ASR included)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Annotate only the first N records."),
    allow_absolute_paths: bool = allow_absolute_paths_option(),
) -> None:
    """Fill every annotation field the way the VoxBox release computed it: pitch, pitch_std,
    durations, syllables, speed, language, gender/age/emotion with their provenance, five-level
    labels and value tokens, loudness and clipping ratio.

    Interrupted runs resume where they stopped when rerun with the same arguments
    (finished work is kept in OUT.work/)."""
    from voxbox.annotate.runner import annotate_manifest

    summary = annotate_manifest(
        manifest, out, workers=workers, engine=engine, ray_address=ray_address, log=_echo, limit=limit,
        allow_absolute_paths=allow_absolute_paths, pitch_backend=pitch_backend,
        boundaries=str(boundaries) if boundaries else None, gender_model=gender_model,
        gender_labels=gender_labels, age_model=age_model, age_labels=age_labels,
        emotion_model=emotion_model, emotion_labels=emotion_labels, zh_numbers=zh_numbers, device=device,
        gender_by=gender_by, check_native=check_native, embeddings=embeddings, embedding_model=embedding_model,
        asr_model=asr_model, asr_batch_size=asr_batch_size)
    from voxbox.cli.output import result

    result(summary, f"annotated {summary['records']} records ({summary['audio_hours']} h) -> {out}; "
                    f"{summary['reject_summary']}" + _votes_text(summary.get("speaker_votes")))


def _votes_text(votes) -> str:
    """The --gender-by speaker lines: speakers voted, and those whose clips disagree."""
    if votes is None:
        return ""
    bad = votes["inconsistent"]
    lines = [f"\ngender by speaker: {votes['speakers']} speakers voted; {len(bad)} with clips that disagree "
             "strongly" + (":" if bad else "")]
    lines += [f"  {v['speaker']}: {v['gender']} by vote, {v['disagree_rate']:.0%} of {v['clips']} clips disagree "
              f"{v['counts']}" for v in bad[:20]]
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    app.command("annotate")(annotate)
