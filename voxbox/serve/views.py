"""What the pages show, as JSON: the overview from :mod:`voxbox.dataset.stats`, and one
record with the provenance of each field and the Spark-TTS examples it becomes on export
(:func:`voxbox.sparktts.export.examples_for`, the exporter's own code).
"""

from __future__ import annotations

from typing import Dict, List, Optional

from voxbox.record import Utterance

OVERVIEW_FIELDS = ("corpus", "language", "gender", "split", "age", "emotion", "pitch_level", "speed_level",
                   "pitch_std_level")
SEMANTIC_PREVIEW = 60  # semantic tokens sent with a record (the export target has them all)


# ------------------------------------------------------------------------------------
# Overview
# ------------------------------------------------------------------------------------

def _hist(h) -> dict:
    """Non-empty span of a fixed-grid histogram: first edge, bin width, counts."""
    counts = h.counts.tolist()
    nz = [i for i, c in enumerate(counts) if c]
    if not nz:
        return {"start": 0.0, "width": h.width, "counts": [], "overflow": 0}
    lo, hi = nz[0], min(nz[-1], len(counts) - 2)
    return {"start": lo * h.width, "width": h.width, "counts": counts[lo:hi + 1], "overflow": counts[-1]}


def overview(stats, ds) -> dict:
    """The report's statistics, shaped for drawing (every count links to its records)."""
    tables = {name: [{"value": v, "records": n, "hours": round(h, 4)} for v, n, h in stats.table(name)]
              for name in OVERVIEW_FIELDS}
    grid = [{"pitch_level": p, "speed_level": s, "records": n} for (p, s), n in sorted(stats.level_grid.items())]
    bounds = stats.boundaries or {}
    return {
        "name": ds.name, "records": stats.records, "hours": round(stats.hours, 4),
        "tables": tables, "level_grid": grid,
        "label_sources": {k: dict(v) for k, v in stats.label_sources.items()},
        "pitch": {"unit": "mel", "by_gender": {g: _hist(h) for g, h in sorted(stats.pitch_hist.items())},
                  "boundaries": {g: list(b) for g, b in (bounds.get("pitch") or {}).items()}},
        "speed": {"unit": "syllables/s", "by_language": {lang: _hist(h) for lang, h in sorted(stats.speed_hist.items())},
                  "boundaries": {g: list(b) for g, b in (bounds.get("speed") or {}).items()}},
        "duration": _hist(stats.duration_hist),
        "tokens": {"tokenized": stats.tokenized, "semantic_total": stats.semantic_total,
                   "global_lengths": {str(k): v for k, v in stats.global_len.items()}},
        "rejects": [{"stage": k.split(": ", 1)[0], "reason": k.split(": ", 1)[-1], "count": n}
                    for k, n in stats.rejects.most_common()],
        "corrected": dict(getattr(stats, "corrected", {}) or {}),
        "oddities": [{"kind": o.kind, "why": o.why, "index": o.index, "corpus": o.corpus, "text": o.text}
                     for o in stats.oddities()],
    }


# ------------------------------------------------------------------------------------
# One record
# ------------------------------------------------------------------------------------

GROUPS = (
    ("Release fields (VoxBox order)", ("index", "split", "language", "age", "gender", "emotion", "pitch",
                                       "pitch_std", "speed", "duration", "speech_duration", "syllable_num",
                                       "text", "syllables", "wav_path")),
    ("Source", ("corpus", "utt_id", "speaker", "source_path", "sample_rate", "num_samples", "channels",
                "license")),
    ("Label provenance", ("gender_source", "gender_model", "gender_confidence", "age_source", "age_model",
                          "age_confidence", "emotion_source", "emotion_model", "emotion_confidence")),
    ("Levels and Spark-TTS values", ("pitch_backend", "pitch_level", "pitch_std_level", "speed_level",
                                     "pitch_value", "pitch_var_value", "speed_value")),
    ("Quality", ("loudness", "clipping_ratio", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808")),
    ("ASR check", ("text_source", "asr_model", "asr_text", "asr_wer", "asr_cer")),
)


def _stage_params(pipeline: Optional[dict], stage: str) -> Optional[dict]:
    for s in (pipeline or {}).get("stages") or []:
        if isinstance(s, dict) and s.get("stage") == stage and not s.get("skipped"):
            return s.get("params") or {}
    return None


def _label_source(rec: Utterance, name: str) -> str:
    fix = ((rec.extra or {}).get("corrected") or {}).get(name)
    if fix:
        return f"corrected by {fix.get('who')} ({fix.get('when')}); was {fix.get('old')!r}"
    source = getattr(rec, f"{name}_source")
    if source == "predicted":
        conf = getattr(rec, f"{name}_confidence")
        conf_text = f", confidence {conf:.2f}" if conf is not None else ""
        return f"predicted by {getattr(rec, f'{name}_model') or 'a model'}{conf_text}"
    if source == "native":
        return "native: from the corpus metadata"
    if getattr(rec, name) is None:
        return "null: no label and no model"
    if getattr(rec, name) == "UNKNOWN":
        return "UNKNOWN: the corpus has no emotion label and no emotion model was named"
    return "from the input"


def provenance(rec: Utterance, pipeline: Optional[dict], roots: List[str] = ()) -> Dict[str, str]:
    """field -> where its value came from, in words (``roots``: where the build read the corpus)."""
    annotate = _stage_params(pipeline, "annotate")
    tokenize = _stage_params(pipeline, "tokenize")
    by_annotate = "measured by the annotate stage" if annotate is not None or pipeline is None else "from the input"
    out = {
        "index": "make_index(corpus, source_path): stable across machines",
        "split": "set by the corpus recipe", "language": "recipe, else from the text (CJK -> zh, else en)",
        "text": "the corpus transcript", "corpus": "the recipe", "speaker": "the corpus metadata",
        "source_path": "path inside the corpus" + (f" (read from {', '.join(roots)})" if roots else ""),
        "utt_id": "the corpus's own utterance id", "wav_path": "<corpus>/<index>.<ext>, as the VoxBox release",
        "license": "the corpus catalog entry",
        "sample_rate": "source file header", "num_samples": "source file header", "channels": "source file header",
        "pitch": f"mean voiced F0, {rec.pitch_backend or 'world'} tracker, {by_annotate}",
        "pitch_std": f"std of min-max normalised F0, {by_annotate}",
        "duration": f"16 kHz length after loading, {by_annotate}",
        "speech_duration": f"length after RMS trimming (the shaded region), {by_annotate}",
        "syllable_num": f"syllables of the text, {by_annotate}", "syllables": f"syllabified text, {by_annotate}",
        "speed": f"syllable_num / speech_duration, {by_annotate}",
        "pitch_level": "pitch in Mel against the gender's boundaries" + _boundaries_note(annotate),
        "pitch_std_level": "pitch_std against the gender's boundaries" + _boundaries_note(annotate),
        "speed_level": "speed against the language's boundaries" + _boundaries_note(annotate),
        "loudness": f"BS.1770 integrated loudness (LUFS), {by_annotate}",
        "clipping_ratio": f"share of source samples at full scale, {by_annotate}",
    }
    for k in ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808"):
        out[k] = "DNSMOS (P.835 SIG/BAK/OVRL, P.808) from the dnsmos stage"
    if rec.text_source == "asr":
        out["text"] = f"transcribed by the ASR model {rec.asr_model}"
    for k in ("asr_text", "asr_wer", "asr_cer"):
        out[k] = "the annotate stage's asr_model (WER/CER of the text against its hypothesis, normalised)"
    for name in ("gender", "age", "emotion"):
        out[name] = _label_source(rec, name)
    if rec.text is not None and ((rec.extra or {}).get("corrected") or {}).get("text"):
        out["text"] = _label_source(rec, "text")
    if rec.global_tokens:
        where = (tokenize or {}).get("model_dir")
        out["global_tokens"] = out["semantic_tokens"] = "BiCodec tokenize stage" + (f" ({where})" if where else "")
    for k, why in (rec.null_reasons or {}).items():
        if getattr(rec, k, None) is None:
            out[k] = f"null: {why}"
    return out


def _boundaries_note(annotate: Optional[dict]) -> str:
    path = (annotate or {}).get("boundaries")
    return f" ({path})" if path else " (VoxBox's published boundaries)"


def export_examples(rec: Utterance) -> List[dict]:
    """The Spark-TTS training examples this record becomes (or why it is skipped)."""
    from voxbox.sparktts.export import TASKS, examples_for

    out = []
    for item in examples_for(rec, TASKS):
        if isinstance(item, tuple):
            out.append({"task": item[0], "skipped": item[1]})
        else:
            out.append({"task": item.task, "prompt": item.prompt, "target": item.target})
    return out


def record_view(rec: Utterance, pipeline: Optional[dict], corrections: List[dict], roots: List[str] = ()) -> dict:
    fields = rec.to_dict()
    sem = fields.pop("semantic_tokens") or []
    fields["semantic_tokens"] = sem[:SEMANTIC_PREVIEW]
    groups = [{"title": t, "fields": list(names)} for t, names in GROUPS]
    return {
        "record": fields, "semantic_count": len(sem), "groups": groups,
        "provenance": provenance(rec, pipeline, roots), "export": export_examples(rec), "corrections": corrections,
    }
