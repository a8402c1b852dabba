"""CLI command group: voxbox synth (tts, codec, control); see voxbox.cli for conventions."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

synth_app = typer.Typer(
    help="Spark-TTS synthesis and checks: synthesise speech, round-trip a built dataset through "
         "BiCodec, and check that the controllable TTS does what its labels say.",
    no_args_is_help=True,
)

_MODEL_DIR = "Spark-TTS model folder in the official layout (LLM/, BiCodec/, wav2vec2-large-xlsr-53/, config.yaml)."
_LEVELS = "very_low|low|moderate|high|very_high (or 1-5)"


def _gen_options(temperature, top_k, top_p, max_new_tokens, seed, constrain, repetition_penalty=1.0):
    from spark_tokenize.tts import GenerationOptions

    return GenerationOptions(temperature=temperature, top_k=top_k, top_p=top_p, max_new_tokens=max_new_tokens,
                             seed=seed, constrain=constrain, repetition_penalty=repetition_penalty)


def _tokenizer_errors():
    """Turn spark_tokenize's errors into one-line voxbox errors."""
    import contextlib

    from spark_tokenize.errors import TokenizerError

    from voxbox.errors import VoxboxError

    @contextlib.contextmanager
    def ctx():
        try:
            yield
        except TokenizerError as e:
            raise VoxboxError(str(e)) from None

    return ctx()


# Shared generation options (defaults = the official inference code).
_TEMP = typer.Option(0.8, "--temperature", help="Sampling temperature.")
_TOPK = typer.Option(50, "--top-k", help="Top-k sampling (0 turns it off).")
_TOPP = typer.Option(0.95, "--top-p", help="Nucleus sampling probability mass.")
_MAXNEW = typer.Option(3000, "--max-new-tokens", help="Most tokens to generate per utterance (50 per second of audio).")
_SEED = typer.Option(None, "--seed", help="Random seed for reproducible sampling (default: not seeded).")
_CONSTRAIN = typer.Option(False, "--constrain/--no-constrain",
                          help="Mask ids the Spark-TTS output format does not allow at each step, so every output "
                               "parses (default off: official sampling).")
_REP = typer.Option(1.0, "--repetition-penalty", help="Repetition penalty (1.0 = none, as the official code; "
                    "values above 1 can cure long silences).")
_DEVICE = typer.Option("cpu", "--device", help="Torch device: cpu, cuda, cuda:N or auto (CUDA when available).")
_DTYPE = typer.Option("float32", "--dtype", help="LLM dtype: float32, bfloat16 (CUDA only) or auto (bfloat16 on "
                      "CUDA); float16 is refused.")
_BATCH = typer.Option(8, "--batch-size", help="Texts generated together in one left-padded batch.")


@synth_app.command("tts")
def tts_cmd(
    model_dir: Path = typer.Option(..., "--model-dir", "-m", help=_MODEL_DIR),
    text: List[str] = typer.Option(..., "--text", help="Text to speak; repeat for several utterances "
                                   "(batched)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output .wav or .flac (one text), or a folder for 000.wav, 001.wav, ... "
                             "(several)."),
    prompt_audio: Optional[Path] = typer.Option(None, "--prompt-audio", help="Reference audio to clone the voice of."),
    prompt_text: Optional[str] = typer.Option(None, "--prompt-text", help="Transcript of the reference audio (optional; "
                                              "improves cloning in the same language)."),
    gender: Optional[str] = typer.Option(None, "--gender", help="Controllable TTS: female or male (no "
                                         "--prompt-audio)."),
    pitch: Optional[str] = typer.Option(None, "--pitch", help=f"Controllable TTS pitch level: {_LEVELS}."),
    speed: Optional[str] = typer.Option(None, "--speed", help=f"Controllable TTS speed level: {_LEVELS}."),
    temperature: float = _TEMP, top_k: int = _TOPK, top_p: float = _TOPP, max_new_tokens: int = _MAXNEW,
    seed: Optional[int] = _SEED, constrain: bool = _CONSTRAIN, repetition_penalty: float = _REP,
    device: str = _DEVICE, dtype: str = _DTYPE, batch_size: int = _BATCH,
) -> None:
    """Synthesise speech with Spark-TTS.

    Voice cloning with --prompt-audio [--prompt-text], or controllable TTS with --gender --pitch --speed. Writes 16 kHz wavs.
    """
    from voxbox.errors import VoxboxError

    if prompt_audio is not None and gender is not None:
        raise VoxboxError("--prompt-audio (voice cloning) and --gender (controllable TTS) exclude each other: "
                          "give one of them")
    if prompt_audio is None and gender is None:
        raise VoxboxError("give either --prompt-audio (voice cloning) or --gender with --pitch and --speed")
    if prompt_audio is not None and (pitch or speed):
        raise VoxboxError("--pitch/--speed need --gender (controllable TTS), not --prompt-audio")
    if gender is not None and (pitch is None or speed is None):
        raise VoxboxError("controllable TTS needs --gender, --pitch and --speed")
    if prompt_text is not None and prompt_audio is None:
        raise VoxboxError("--prompt-text needs --prompt-audio")
    from voxbox.sparktts.synth import synth_tts

    with _tokenizer_errors():
        results = synth_tts(model_dir, text, out, prompt_audio=prompt_audio, prompt_text=prompt_text,
                            gender=gender, pitch=pitch, speed=speed,
                            options=_gen_options(temperature, top_k, top_p, max_new_tokens, seed, constrain,
                                                 repetition_penalty),
                            device=device, dtype=dtype, batch_size=batch_size)
    failed = 0
    for r in results:
        if r.ok:
            note = "" if r.finished else " (stopped at --max-new-tokens)"
            typer.echo(f"{r.extra['path']}: {r.duration:.2f} s, {r.generated_tokens} tokens{note}")
        else:
            failed += 1
            typer.echo(f"failed: {r.text[:40]!r}: {r.error}", err=True)
    if failed:
        raise VoxboxError(f"{failed} of {len(results)} utterance(s) gave no usable output (see above)")


@synth_app.command("codec")
def codec_cmd(
    dataset: Path = typer.Argument(..., help="Built dataset folder (output of voxbox build) with BiCodec tokens."),
    model_dir: Optional[Path] = typer.Option(None, "--model-dir", "-m", help="Model folder with BiCodec/ and the wav2vec2 "
                                             "folder (default: the one named in the dataset's pipeline.yaml)."),
    out: Path = typer.Option(..., "--out", "-o", help="Report folder: wavs/, report.json, report.html."),
    n: int = typer.Option(20, "--n", help="Records to sample (all records with tokens when fewer)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the record sample."),
    threshold: float = typer.Option(3.5, "--threshold", help="Robust z-score (median/MAD) beyond which a metric is "
                                    "an outlier."),
    pitch_backend: str = typer.Option("world", "--pitch-backend", help="F0 tracker for the F0 error: world or praat."),
    device: str = _DEVICE,
) -> None:
    """Round-trip sampled records of a built dataset through BiCodec.

    Decodes the stored tokens and compares with the original audio (log-mel distance, F0 error, duration, speaker similarity); flags outliers.
    """
    from voxbox.sparktts.synth import codec_check

    with _tokenizer_errors():
        rep = codec_check(dataset, model_dir, out, n=n, seed=seed, device=device, threshold=threshold,
                          pitch_backend=pitch_backend)
    s = rep["summary"]
    typer.echo(f"checked {rep['checked']} of {rep['eligible']} records with tokens; "
               f"{rep['flagged']} flagged, {rep['errors']} errors")
    for m in ("log_mel_distance", "f0_rmse_cents", "duration_diff", "speaker_similarity"):
        if s[m].get("n"):
            typer.echo(f"  {m}: median {s[m]['median']:.3f} (min {s[m]['min']:.3f}, max {s[m]['max']:.3f})")
    for r in rep["records"]:
        if r["flags"]:
            typer.echo(f"  flagged {r['index']}: {'; '.join(r['flags'])}")
    typer.echo(f"report: {out / 'report.html'}")


@synth_app.command("control")
def control_cmd(
    model_dir: Path = typer.Option(..., "--model-dir", "-m", help=_MODEL_DIR),
    text: str = typer.Option(..., "--text", help="Text spoken in every grid cell."),
    out: Path = typer.Option(..., "--out", "-o", help="Report folder: wavs/, report.json, report.html."),
    genders: str = typer.Option("female,male", "--genders", help="Comma-separated genders of the grid."),
    pitch_levels: str = typer.Option(",".join(("very_low", "low", "moderate", "high", "very_high")), "--pitch-levels",
                                     help="Comma-separated pitch levels of the grid."),
    speed_levels: str = typer.Option(",".join(("very_low", "low", "moderate", "high", "very_high")), "--speed-levels",
                                     help="Comma-separated speed levels of the grid."),
    repeats: int = typer.Option(1, "--repeats", help="Utterances per grid cell (different samples)."),
    pitch_backend: str = typer.Option("world", "--pitch-backend", help="F0 tracker of the annotation: world or praat."),
    temperature: float = _TEMP, top_k: int = _TOPK, top_p: float = _TOPP, max_new_tokens: int = _MAXNEW,
    seed: Optional[int] = typer.Option(0, "--seed", help="Random seed for reproducible sampling."),
    constrain: bool = _CONSTRAIN, repetition_penalty: float = _REP, device: str = _DEVICE, dtype: str = _DTYPE,
    batch_size: int = _BATCH,
) -> None:
    """Check controllable TTS against voxbox's own annotation.

    Synthesises the grid gender x pitch level x speed level, annotates every output and reports requested vs measured levels as confusion tables.
    """
    from voxbox.sparktts.synth import control_check

    def split(s: str) -> List[str]:
        return [x.strip() for x in s.split(",") if x.strip()]

    with _tokenizer_errors():
        rep = control_check(model_dir, text, out, genders=split(genders), pitch_levels=split(pitch_levels),
                            speed_levels=split(speed_levels), repeats=repeats,
                            options=_gen_options(temperature, top_k, top_p, max_new_tokens, seed, constrain,
                                                 repetition_penalty),
                            device=device, dtype=dtype, batch_size=batch_size, pitch_backend=pitch_backend)
    typer.echo(f"{rep['synthesised']} of {rep['requested']} utterances synthesised, {rep['failed']} failed")
    for attr in ("pitch", "speed", "gender"):
        t = rep["tables"][attr]
        acc = "-" if t["accuracy"] is None else f"{t['accuracy']:.2f}"
        near = "-" if t["within_one"] is None else f"{t['within_one']:.2f}"
        typer.echo(f"  {attr}: exact {acc}" + (f", within one level {near}" if attr != "gender" else "")
                   + f" ({t['measured']} measured)")
    typer.echo(f"report: {out / 'report.html'}")


def register(app: typer.Typer) -> None:
    app.add_typer(synth_app, name="synth")
