"""The one vocabulary of reason codes: why a record was rejected, skipped or left null.

Every code a user can meet in ``rejects.jsonl``, ``index.json``, the card, the report,
an export summary or a record's ``null_reasons`` is defined here once, with a one-line
meaning and whether rerunning the same command on the same input can fix it
(``retryable``: the cause was transient, e.g. a crash or memory, not the data).

``kind`` says where a code appears:

- ``reject``: a record left out of the output, written to the rejects file
  (``Rejection.reason``); ``voxbox.record.Rejection`` refuses any other code;
- ``skip``: a record left out on purpose and only counted (a recipe option, an export
  task the record cannot give);
- ``null``: a record kept with a field set to null, the code in ``null_reasons``.

``voxbox reasons`` prints this table. To add a code, add one line to ``REASONS``; the
tests fail on a code used in the source but not defined here. A plug-in stage outside
voxbox registers its own codes with ``define()``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Dict, Tuple

KINDS = ("reject", "skip", "null")


@dataclass(frozen=True)
class Reason:
    code: str
    kind: str        # reject | skip | null
    meaning: str     # one line, for a user reading a rejects file
    retryable: bool  # a rerun of the same command on the same input may succeed


def _table(*rows: Tuple[str, str, str, bool]) -> Dict[str, Reason]:
    out: Dict[str, Reason] = {}
    for code, kind, meaning, retryable in rows:
        assert code not in out and kind in KINDS, code
        out[code] = Reason(code, kind, meaning, retryable)
    return out


REASONS: Dict[str, Reason] = _table(
    # -- audio files (prepare, annotate, tokenize, shard writer) -----------------------
    ("missing_audio", "reject", "the audio file does not exist", False),
    ("no_audio_path", "reject", "the record names no audio file (no corpus_root/source_path)", False),
    ("empty_file", "reject", "the audio file has zero bytes", False),
    ("unreadable_audio", "reject", "the audio file cannot be opened or decoded", False),
    ("truncated_audio", "reject", "the audio file is shorter than its header says", False),
    ("no_audio_samples", "reject", "the audio holds no samples", False),
    ("non_finite_samples", "reject", "the audio holds NaN or infinite samples", False),
    ("audio_too_short", "reject", "the clip is shorter than the stage needs (detail says how short)", False),
    ("silent_audio", "reject", "no speech found: the clip is silent or below the level threshold", False),
    ("bad_audio_array", "reject", "an in-memory audio array has a bad shape, dtype or sample rate", False),
    ("too_many_channels", "reject", "more channels than a FLAC shard holds (8)", False),
    ("unsupported_sample_rate", "reject", "a sample rate no shard holds (below 1000 Hz or above FLAC's 655350 Hz)",
     False),
    ("too_long", "reject", "longer than the duration cap (VOXBOX_MAX_DURATION_S, default 1800 s), seen in the "
                           "header before decoding", False),
    # -- files that are not plain files (any reader) --------------------------------------
    ("not_a_regular_file", "reject", "a FIFO, device, socket or folder where a file was expected; never read", False),
    ("symlink_loop", "reject", "a symbolic link that leads back to itself", False),
    ("broken_link", "reject", "a symbolic link to something that does not exist", False),
    ("link_to_ancestor", "reject", "a link to a folder that holds the corpus; not followed (it would walk the "
                                   "corpus again, or the whole disk for a link to /)", False),
    ("duplicate_folder", "reject", "a folder reached again through a link; its files are listed once, "
                                   "under the first path", False),
    ("path_too_long", "reject", "a path too long or too deep for the system to open", False),
    ("unreadable_file", "reject", "the file exists but cannot be opened (detail says why, e.g. permissions)", False),
    ("missing_file", "reject", "the file does not exist", False),
    ("file_too_large", "reject", "the file is larger than voxbox reads for its kind (see voxbox/limits.py)", False),
    # -- text and corpus layout (prepare) ------------------------------------------------
    ("missing_transcript", "reject", "the corpus has no transcript for this audio file", False),
    ("empty_transcript", "reject", "the transcript is empty", False),
    ("text_not_utf8", "reject", "the transcript is not valid UTF-8", False),
    ("text_too_long", "reject", "the transcript is longer than 65536 characters (or its file larger than 256 KiB)",
     False),
    ("bad_metadata", "reject", "a metadata line or file of the corpus cannot be parsed", False),
    ("unexplained_file", "reject", "a file the corpus layout does not explain", False),
    ("known_bad_file", "reject", "a file the corpus maintainers list as corrupt", False),
    ("duplicate_id", "reject", "the corpus layout lists the same file twice", False),
    ("bad_record", "reject", "a manifest line is no valid record (the detail names the line and the field)", False),
    ("source_outside_root", "reject", "the record's source_path leaves its corpus_root (absolute or with '..'); "
                                      "allowed only with --allow-absolute-paths", False),
    ("unsupported_audio_format", "reject", "audio in a container voxbox cannot decode (webm, m4a, mp4, avi): "
                                           "convert it to wav/flac beside the original (detail says how)", False),
    ("bad_archive", "reject", "an archive of the corpus cannot be read or holds an unsafe member; "
                              "none of its members are read", False),
    ("filtered", "reject", "left out by a filter rule of the pipeline (detail names the rule, the value and "
                           "the threshold)", False),
    ("no_speech", "reject", "voice activity detection found no segment to keep in the recording (prepare "
                            "--segment vad; detail says whether speech was absent or only too short)", False),
    ("span_out_of_range", "reject", "a segment's span (offset, duration) does not lie inside its source "
                                    "recording, or has no length", False),
    ("duplicate_index", "reject", "two input records have the same index; the first one is kept", False),
    ("duplicate", "reject", "build --dedup: the same utterance as another record of the dedup report (detail "
                            "names the copy kept, chosen by corpus priority)", False),
    ("segment_not_supported", "reject", "lhotse: the supervision covers only part of its recording (or a cut "
                                        "holds several); voxbox records are whole files", False),
    ("unsupported_audio_source", "reject", "lhotse: the recording is not read from a plain file (a URL, bytes "
                                           "in memory, a command, Shar)", False),
    ("remote_unavailable", "reject", "a remote root's storage (hf://, s3://, ...) kept failing after the bounded "
                                     "retries (network trouble, HTTP 429 or 5xx); rerun later", True),
    ("remote_denied", "reject", "a remote root's storage refused access (HTTP 401/403, a gated or private repo); "
                                "a run stops on it where it concerns the whole root", False),
    ("remote_error", "reject", "a remote root's storage answered a read with an error that is not transient "
                               "(the detail holds it)", False),
    # -- stages ----------------------------------------------------------------------------
    ("tokenizer_error", "reject", "BiCodec could not tokenize the clip (detail says why)", False),
    ("tokens_out_of_range", "reject", "BiCodec made tokens outside its codebooks: the model weights are damaged "
                                      "(NaN or inf)", False),
    ("unexpected_error", "reject", "a stage failed unexpectedly (a bug or a transient fault such "
                                   "as memory); the detail holds the error", True),
    # -- counted skips ---------------------------------------------------------------------
    ("other_microphone", "skip", "a recording from the microphone the recipe's mic option leaves out", False),
    ("short_vad_segment", "skip", "a speech segment VAD found that is shorter than vad_min_duration "
                                  "(prepare --segment vad)", False),
    ("non_speech_segment", "skip", "a segment the corpus marks as non-speech (GigaSpeech's <SIL>, <MUSIC>, "
                                   "<NOISE>, <OTHER> garbage utterances; tag-only MagicData lines)", False),
    ("unsegmented_recording", "skip", "a long recording the corpus does not cut into utterances (Expresso's "
                                      "conversational part); not read", False),
    ("no_tokens", "skip", "export: the record has no BiCodec tokens", False),
    ("bad_global_tokens", "skip", "export: the record does not hold exactly 32 global tokens", False),
    ("token_out_of_range", "skip", "export: a token lies outside its codebook", False),
    ("no_text", "skip", "export: the record has no text", False),
    ("speed_over_10", "skip", "export: more than 10 syllables per second, as Spark-TTS drops", False),
    ("no_gender", "skip", "export (control): gender is not male or female", False),
    ("no_pitch", "skip", "export (control): no pitch level and no pitch to derive it from", False),
    ("no_speed", "skip", "export (control): no speed level and no speed to derive it from", False),
    ("no_speed_boundaries", "skip", "export (control): no speed boundaries for the record's group", False),
    ("bad_level", "skip", "export (control): a pitch or speed level outside the five levels", False),
    ("over_max_tokens", "skip", "export, train: the example is longer than --max-tokens", False),
    ("bad_row", "skip", "train: an `export sparktts` row lacks its prompt or target, or names no known task", False),
    ("no_gender_label", "skip", "train-gender: the record has no male/female label", False),
    ("no_age_label", "skip", "train-age: the record has no native VoxBox age group", False),
    ("no_emotion_label", "skip", "train-emotion: the record has no native emotion (or UNKNOWN)", False),
    # -- null fields -----------------------------------------------------------------------
    ("no_voiced_frames", "null", "pitch: no voiced frame in the speech", False),
    ("unknown_gender", "null", "pitch levels: gender unknown, so no boundaries apply", False),
    ("no_boundaries_for_group", "null", "levels: the boundaries file has no row for the record's group", False),
    ("no_label_no_model", "null", "no native label and no model configured to predict one", False),
    ("no_embedding", "null", "no speaker embedding: the audio could not be read, or no part of it gave the "
                             "encoder a direction (embedding, speaker, or a label from an embedding model)", False),
    ("unmapped_model_label", "null", "the model predicted a label the VoxBox label set lacks", False),
    ("empty_text", "null", "syllables/speed: the record has no text", False),
    ("no_pronounceable_text", "null", "syllables/speed: the text has no pronounceable word", False),
    # Given by the shard writers (voxbox.shards.finalize) to a null no stage explained:
    ("not_tokenized", "null", "the tokenize stage did not run (build without --model-dir)", False),
    ("not_annotated", "null", "the annotate stage did not run", False),
    ("not_computed", "null", "annotate ran but did not compute this value", False),
    ("no_native_label", "null", "the corpus gives no such label and no model predicted one", False),
    ("native_label", "null", "the label is the corpus's own, so no model or confidence applies", False),
    ("not_in_source", "null", "the corpus or manifest does not provide this value", False),
    ("not_requested", "null", "an optional value nobody asked for (embedding: annotate without --embeddings)",
     False),
    ("corpus_text", "null", "text_source: the text is the corpus's own transcript (not written by an ASR model)",
     False),
    ("no_asr_model", "null", "asr_*: annotate ran without an asr_model (no ASR hypothesis, WER or CER)", False),
    ("text_from_asr", "null", "asr_wer/asr_cer: the text was written by the ASR model, so there is nothing to "
                              "check it against", False),
    ("empty_reference", "null", "asr_wer/asr_cer: the given text has no words once normalised (only "
                                "punctuation or symbols)", False),
    ("asr_empty", "null", "text/asr_text: the ASR model heard no words in the clip", False),
    ("not_a_duplicate", "null", "duplicate_of: not a known duplicate (unique, the copy kept, or no `voxbox dedup` "
                                "report applied)", False),
    ("corpus_speaker", "null", "speaker_source: the speaker id is the corpus's own (or it has none)", False),
    ("no_model_answer", "null", "gender_clip: the gender model did not run on the clip (no model, or a native "
                                "label with --no-check-native) or gave no answer (see gender's reason)", False),
    ("label_corrected", "null", "a label or the text was corrected by hand (build --corrections); a field "
                                "derived from it waits for a stage to recompute it", False),
)


# Codes earlier versions wrote, read back as the code that replaced them (old rejects files).
RENAMED: Dict[str, str] = {
    "audio_missing": "missing_audio", "audio_not_found": "missing_audio",
    "audio_unreadable": "unreadable_audio", "too_short": "audio_too_short", "silent": "silent_audio",
    "empty_audio": "no_audio_samples", "nonfinite_audio": "non_finite_samples",
}


class UnknownReason(ValueError):
    """A code used in the source that ``REASONS`` does not define: a bug, caught by tests."""


def define(code: str, kind: str, meaning: str, retryable: bool = False) -> Reason:
    """Add a code for a plug-in stage (call it at import time of the stage's module, so
    every worker that imports the stage knows the code). Voxbox's own codes belong in
    ``REASONS`` above; redefining a code with another meaning is refused."""
    reason = Reason(code, kind, meaning, retryable)
    if kind not in KINDS or not code.isidentifier() or code != code.lower():
        raise ValueError(f"reason code {code!r} must be snake_case, kind one of {', '.join(KINDS)}")
    if REASONS.setdefault(code, reason) != reason:
        raise ValueError(f"reason code {code!r} is already defined: {REASONS[code].meaning}")
    return reason


def get(code: str, kind: str | None = None) -> Reason:
    """The Reason for ``code``; ValueError naming the closest defined code when unknown
    (or when it is not of ``kind``)."""
    reason = REASONS.get(code)
    if reason is None or (kind is not None and reason.kind != kind):
        pool = [c for c, r in REASONS.items() if kind is None or r.kind == kind]
        near = [RENAMED[code]] if code in RENAMED else difflib.get_close_matches(str(code), pool, n=1)
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        what = f"{kind} reason" if kind else "reason"
        raise UnknownReason(f"unknown {what} code {code!r}{hint}; define it in voxbox/reasons.py")
    return reason


def check(code: str, kind: str | None = None) -> str:
    """``code`` itself when defined (of ``kind`` if given), else UnknownReason."""
    get(code, kind)
    return code


def is_retryable(code: str) -> bool:
    """Whether a rerun can fix a record rejected with ``code`` (unknown codes: no)."""
    reason = REASONS.get(code)
    return bool(reason and reason.retryable)


def table_lines() -> list:
    """The table as aligned text lines, grouped by kind (what ``voxbox reasons`` prints)."""
    width = max(len(c) for c in REASONS)
    lines = [f"{'code':<{width}}  {'kind':<6}  {'rerun':<5}  meaning"]
    for kind in KINDS:
        for r in REASONS.values():
            if r.kind == kind:
                lines.append(f"{r.code:<{width}}  {r.kind:<6}  {'yes' if r.retryable else 'no':<5}  {r.meaning}")
    return lines
