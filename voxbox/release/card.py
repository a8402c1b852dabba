"""The dataset card (``README.md``) published with a built dataset.

The YAML header is what the Hub reads: licenses derived from the source corpora,
languages, task categories, size category, and ``configs`` whose ``data_files`` point
at the Parquet shards (the default, so ``load_dataset(repo)`` works) and at the
WebDataset shards (a second config). The body says what the dataset is, how it was
built (pipeline and versions from the folder), statistics, field descriptions,
per-corpus license and attribution, and known limitations.

The card depends only on the built folder, never on the time it is generated, so
publishing the same folder twice yields the same bytes (and uploads nothing).
"""

from __future__ import annotations

import re
from typing import Dict, List, Optional, Tuple

from voxbox.dataset.reader import hub_split  # noqa: F401 - the card's split names, re-exported
from voxbox.record import LEVELS

TASK_CATEGORIES = ["text-to-speech"]
TAGS = ["speech", "voxbox", "spark-tts", "bicodec", "webdataset", "parquet"]

# Hub license identifiers (https://huggingface.co/docs/hub/repositories-licenses) we map to.
_HUB_LICENSES = {
    "apache-2.0", "mit", "cc0-1.0", "cc-by-2.0", "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0", "cc-by-sa-4.0",
    "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0",
    "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0", "odbl", "odc-by", "pddl", "gpl-3.0", "lgpl-3.0", "bsd-3-clause",
    "cdla-permissive-2.0", "cdla-sharing-1.0",
}

FIELD_DESCRIPTIONS: Dict[str, str] = {
    "audio": "The clip: `{bytes, path}` (FLAC, or the source file's own bytes); an `Audio` feature in `datasets`.",
    "index": "Stable id `<corpus>_<16 hex>` (hash of corpus and source path); the WebDataset key.",
    "split": "The corpus's own split (`train`, `dev`, `test`); each is its own Hub split (`dev` as `validation`).",
    "language": "Utterance language (`en`, `zh`, ...).",
    "age": "Age group: Child, Teenager, Youth-Adult, Middle-aged, Elderly.",
    "gender": "`female` or `male`.",
    "emotion": "One of VoxBox's 25 upper-case emotion classes; `UNKNOWN` for non-emotional corpora.",
    "pitch": "Mean F0 of voiced frames, Hz (3 dp).",
    "pitch_std": "Standard deviation of min-max-normalised F0 (3 dp).",
    "speed": "Syllables per second of speech (`syllable_num / speech_duration`, 1 dp).",
    "duration": "Seconds after loading (2 dp).",
    "speech_duration": "Seconds after trimming leading and trailing silence (3 dp).",
    "syllable_num": "Number of syllables in the text.",
    "text": "Transcript.",
    "syllables": "Syllables: ARPAbet groups for English, characters for Chinese.",
    "wav_path": "`<corpus>/<index>.<ext>`, as in the VoxBox release (`<ext>`: the audio member's extension).",
    "corpus": "Source corpus name.",
    "utt_id": "The corpus's own utterance id (e.g. LibriTTS `260_123440_000010_000004`), for joins with other "
              "manifests (lhotse, ESPnet, Hugging Face).",
    "speaker": "Speaker id within the corpus.",
    "speaker_source": "null: the corpus's own speaker id; `predicted`: a cluster of speaker embeddings "
                      "(`voxbox speakers`).",
    "text_source": "null: the text is the corpus's own transcript; `asr`: written by the ASR model in "
                   "`asr_model` (annotate --asr-model).",
    "source_path": "Path of the source file inside the corpus.",
    "sample_rate": "Sample rate of the source file (Hz).",
    "num_samples": "Length of the source file (of the span, for a span record), samples per channel.",
    "channels": "Channels of the source file.",
    "dnsmos_sig": "DNSMOS P.835 speech quality (1-5), computed by the dnsmos stage (null if not run).",
    "dnsmos_bak": "DNSMOS P.835 background-noise quality (1-5), computed by the dnsmos stage.",
    "dnsmos_ovrl": "DNSMOS P.835 overall quality (1-5), computed by the dnsmos stage.",
    "dnsmos_p808": "DNSMOS P.808 MOS (1-5), computed by the dnsmos stage.",
    "asr_model": "The ASR model of annotate --asr-model (local folder or Hugging Face id).",
    "asr_text": "The ASR model's hypothesis for the clip.",
    "asr_wer": "Word error rate of `text` against `asr_text`, both normalised (case, punctuation); null when "
               "the text came from the ASR.",
    "asr_cer": "Character error rate of `text` against `asr_text` (normalised, spaces dropped; the rate for "
               "Chinese and Japanese).",
    "span_offset": "For a segment of a longer recording: seconds into source_path where it starts (else null).",
    "span_duration": "For a segment of a longer recording: its length in seconds (else null).",
    "license": "License of the source corpus.",
    "gender_source": "`native` (from the corpus) or `predicted` (by a model).",
    "gender_model": "Model that predicted the gender (null when native).",
    "gender_confidence": "Confidence of the predicted gender (calibrated probability; for a speaker vote, the "
                         "share of the speaker's clip confidence behind the label).",
    "gender_clip": "The gender model's answer for this clip whenever it ran: beside a native label (a check "
                   "of the corpus) or a speaker vote.",
    "gender_clip_confidence": "Confidence of `gender_clip`.",
    "age_source": "`native` or `predicted`.",
    "age_model": "Model that predicted the age group.",
    "age_confidence": "Confidence of the predicted age group.",
    "emotion_source": "`native` or `predicted`.",
    "emotion_model": "Model that predicted the emotion.",
    "emotion_confidence": "Confidence of the predicted emotion.",
    "pitch_backend": "Pitch tracker used (`world` or `praat`).",
    "pitch_level": "Five-level pitch label (very_low .. very_high), gender-specific boundaries in Mel.",
    "pitch_std_level": "Five-level label of `pitch_std`.",
    "speed_level": "Five-level speed label, language-specific boundaries.",
    "pitch_value": "Spark-TTS fine-grained pitch token: int(Mel), 0-1000.",
    "pitch_var_value": "Spark-TTS pitch-variance token: round(20 * min(pitch_std, 0.5)), 0-10.",
    "speed_value": "Spark-TTS speed token: int(syllables/s), 0-10.",
    "loudness": "Loudness, dB.",
    "clipping_ratio": "Fraction of samples at full scale.",
    "duplicate_of": "Index of the record this one duplicates (`voxbox dedup`); null otherwise.",
    "embedding": "Speaker embedding (unit vector, float16), when annotated with `--embeddings`.",
    "embedding_model": "The embedding backend (`ge2e-resemblyzer`, `ecapa-bicodec:<folder>`).",
    "null_reasons": "JSON object: for every null field, why it is null (e.g. `no_voiced_frames`, `not_tokenized`).",
    "global_tokens": "BiCodec global (speaker) tokens: 32 ints.",
    "semantic_tokens": "BiCodec semantic tokens: 50 per second of audio.",
    "extra": "JSON object with recipe-specific extras.",
}


def hub_license(text: Optional[str]) -> str:
    """Map a free-form license name ("CC BY 4.0", "Apache-2.0") to a Hub license id, or "other"."""
    if not text:
        return "other"
    s = text.strip().lower()
    s = re.sub(r"\b(license|licence|international|public)\b", " ", s)
    s = re.sub(r"[\s_/]+", "-", s.strip()).strip("-")
    s = re.sub(r"-+", "-", s)
    if s in _HUB_LICENSES:
        return s
    m = re.match(r"(cc-by(?:-nc)?(?:-sa|-nd)?)-?(\d\.\d)", s)
    if m and f"{m.group(1)}-{m.group(2)}" in _HUB_LICENSES:
        return f"{m.group(1)}-{m.group(2)}"
    if s.startswith("apache"):
        return "apache-2.0"
    if s.startswith("cc0") or "domain" in s:
        return "cc0-1.0"
    if s.startswith("odbl"):
        return "odbl"
    if s.startswith("odc-by"):
        return "odc-by"
    if s == "mit":
        return "mit"
    return "other"


def size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                        (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"),
                        (1_000_000_000, "100M<n<1B")):
        if n < limit:
            return name
    return "n>1T" if n >= 10 ** 12 else "1B<n<10B"


def _catalog() -> dict:
    try:
        from voxbox.sources.catalog import load_catalog

        return load_catalog()
    except Exception:  # noqa: BLE001 - the card must not fail because of a bad catalog entry
        return {}


def corpus_info(stats) -> List[dict]:
    """Per corpus: name, title, homepage, license text and Hub id, records, hours."""
    cat = _catalog()
    out = []
    for name, records, hours in stats.table("corpus"):
        entry = cat.get(name.lower().replace("-", "_"))
        seen = [lic for lic, _n in stats.corpus_licenses[name].most_common() if lic != "unstated"]
        text = seen[0] if seen else (entry.license if entry else None)
        out.append({
            "name": name, "records": records, "hours": hours,
            "title": entry.title if entry else name, "homepage": entry.homepage if entry else None,
            "license": text or "unknown", "hub_license": hub_license(text),
            "other_licenses": seen[1:],
            "native_labels": dict(entry.native_labels) if entry else {},
        })
    return out


_SPLIT_ORDER = {"train": 0, "validation": 1, "test": 2}


def split_files(ds, fmt: str) -> Optional[Dict[str, List[str]]]:
    """``{hub split: [shard paths]}`` for one format, or None when a shard mixes splits
    (a folder built before shards were grouped by split)."""
    out: Dict[str, List[str]] = {}
    for shard in ds.shards:
        if shard.get("split") is None:
            return None
        out.setdefault(hub_split(shard["split"]), []).append(shard["files"][fmt]["path"])
    return dict(sorted(out.items(), key=lambda kv: (_SPLIT_ORDER.get(kv[0], 3), kv[0])))


def _data_files(ds, fmt: str) -> List[dict]:
    glob = {"parquet": "parquet/*.parquet", "webdataset": "webdataset/*.tar"}[fmt]
    by_split = split_files(ds, fmt)
    if by_split is None:
        return [{"split": "train", "path": glob}]
    if len(by_split) == 1:
        return [{"split": next(iter(by_split)), "path": glob}]
    return [{"split": split, "path": paths} for split, paths in by_split.items()]


def card_metadata(ds, stats, corpora: Optional[List[dict]] = None) -> dict:
    """The YAML header as a dict (see the module docstring)."""
    corpora = corpora if corpora is not None else corpus_info(stats)
    licenses = sorted({c["hub_license"] for c in corpora}) or ["other"]
    languages = sorted(k for k in stats.by["language"] if k != "unknown")
    meta: dict = {
        "pretty_name": ds.name,
        "license": licenses[0] if len(licenses) == 1 else licenses,
    }
    if "other" in licenses:
        meta["license_name"] = "per-corpus"
        meta["license_details"] = "Each source corpus keeps its own license; see the Licenses section."
    if languages:
        meta["language"] = languages
    meta["task_categories"] = list(TASK_CATEGORIES)
    meta["tags"] = list(TAGS)
    meta["size_categories"] = [size_category(len(ds))]
    configs = []
    for fmt in ("parquet", "webdataset"):
        if fmt in ds.formats:
            name = "default" if not configs else "webdataset"
            configs.append({"config_name": name, "data_files": _data_files(ds, fmt)})
    if configs:
        configs[0]["default"] = True
    meta["configs"] = configs
    return meta


def _md_table(header: Tuple[str, ...], rows: List[Tuple]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(x).replace("|", "\\|").replace("\n", " ") for x in r) + " |")
    return "\n".join(out)


def _redact_command(argv) -> str:
    """The build's command line, with anything that looks like a secret replaced."""
    args = [str(a) for a in (argv if isinstance(argv, (list, tuple)) else [argv])]
    out = []
    hide_next = False
    for a in args:
        if hide_next:
            out.append("***")
            hide_next = False
            continue
        if re.fullmatch(r"--(hf-)?(token|api-key|password)", a):
            hide_next = True
        elif re.match(r"--(hf-)?(token|api-key|password)=", a):
            a = a.split("=", 1)[0] + "=***"
        a = re.sub(r"hf_[A-Za-z0-9]{16,}", "***", a)
        out.append(a)
    return " ".join(out)


def _hours(h: float) -> str:
    return f"{h:.3f}" if h < 10 else f"{h:,.1f}"


def _stat_rows(stats, name: str, order: Optional[Tuple[str, ...]] = None) -> List[Tuple]:
    rows = stats.table(name)
    if order:
        rank = {k: i for i, k in enumerate(order)}
        rows = sorted(rows, key=lambda r: (rank.get(r[0], len(rank)), r[0]))
    return [(k, f"{n:,}", _hours(h)) for k, n, h in rows]


def render_card(ds, stats, repo_id: Optional[str] = None) -> str:
    """The full README.md text: YAML header, then one section per step below."""
    import yaml

    corpora = corpus_info(stats)
    meta = card_metadata(ds, stats, corpora)
    lines: List[str] = ["---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip(), "---", ""]
    for section in (_intro_section(ds, stats, corpora, meta, repo_id or "OWNER/NAME"), _build_section(ds),
                    _stats_section(stats), _fields_section(), _license_section(corpora),
                    _limitations_section(stats)):
        lines += section
    return "\n".join(lines)


def _splits_of(meta: dict) -> List[str]:
    return [spec["split"] for spec in meta["configs"][0]["data_files"]] if meta["configs"] else ["train"]


def _intro_section(ds, stats, corpora: List[dict], meta: dict, load_id: str) -> List[str]:
    versions = (ds.provenance or {}).get("versions") or {}
    splits = _splits_of(meta)
    split = "train" if "train" in splits else splits[0]
    return [
        f"# {meta['pretty_name']}", "",
        f"{len(ds):,} utterances, {_hours(stats.hours)} hours of speech from {len(corpora)} "
        f"corpus{'es' if len(corpora) != 1 else ''} "
        f"({', '.join(c['name'] for c in corpora) or 'none'}), annotated the way "
        "[VoxBox](https://huggingface.co/datasets/SparkAudio/voxbox) annotates its data and tokenized with "
        "BiCodec, so it trains and fine-tunes [Spark-TTS](https://github.com/SparkAudio/Spark-TTS) without "
        f"conversion. Built with voxbox {versions.get('voxbox', '?')}.", "",
        f"Hub splits: {', '.join(f'`{s}`' for s in splits)} (the corpora's own splits; test data is never "
        "in `train`).", "",
        "## Loading", "",
        "```python",
        "from datasets import load_dataset",
        "",
        f'ds = load_dataset("{load_id}", split="{split}")  # Parquet shards, audio embedded',
        "",
        "# Audio decoded with soundfile (no torchcodec needed): voxbox's reader",
        "from voxbox.dataset import hf_dataset",
        f'ds = hf_dataset("{load_id}", split="{split}")  # ds[0]["audio"]["array"]',
        "",
        "# The same records as WebDataset tars. `datasets` picks one loader per repo (Parquet here),",
        "# so name the webdataset loader and the files of the `webdataset` config explicitly:",
        f'wds = load_dataset("webdataset", data_files="hf://datasets/{load_id}/webdataset/*.tar", split="train")',
        "```", "",
        "Each WebDataset sample is `<index>.json` (the record) plus `<index>.flac` (or the source file's "
        "extension); the tars also stream with the `webdataset` library and with "
        f'`voxbox.dataset.torch_dataset("hf://datasets/{load_id}")`. Both formats hold the same records '
        "in the same order. `index.json` lists every shard with its split and sha256.", "",
    ]


def _build_section(ds) -> List[str]:
    prov = ds.provenance or {}
    versions = prov.get("versions") or {}
    fingerprint = ds.index.get("fingerprint") or {}
    lines = [
        "## How it was built", "",
        "Pipeline: corpus recipe (headers and native labels) -> annotation (front end, pitch, syllables, "
        "speed, five-level labels, gender/age/emotion, loudness) -> BiCodec tokenization -> WebDataset and "
        "Parquet shards, with sha256 checksums in `index.json`.", "",
    ]
    if prov.get("date"):
        lines.append(f"- Built: {prov['date']}")
    if prov.get("command"):
        lines.append(f"- Command: `{_redact_command(prov['command'])}`")
    if fingerprint:
        lines.append("- Fingerprint: " + ", ".join(f"{k} `{v}`" for k, v in sorted(fingerprint.items())))
    lines.append(f"- Audio in shards: {ds.audio_format}; {len(ds.shards)} shards per format "
                 f"({', '.join(ds.formats)})")
    if versions:
        lines += ["", _md_table(("package", "version"), sorted(versions.items()))]
    if ds.pipeline_text:
        lines += ["", "<details><summary>pipeline.yaml</summary>", "", "```yaml", ds.pipeline_text.rstrip(),
                  "```", "", "</details>"]
    return lines + [""]


def _stats_section(stats) -> List[str]:
    lines = ["## Statistics", "",
             f"{stats.records:,} records, {_hours(stats.hours)} hours; "
             f"{sum(stats.rejects.values()):,} inputs rejected during the build.", ""]
    for name, label, order in (("split", "Split", None), ("corpus", "Corpus", None),
                               ("language", "Language", None), ("gender", "Gender", None),
                               ("pitch_level", "Pitch level", LEVELS), ("speed_level", "Speed level", LEVELS)):
        lines += [f"### {label}", "", _md_table((label.lower(), "records", "hours"),
                                               _stat_rows(stats, name, order)), ""]
    if stats.rejects:
        lines += ["### Rejected inputs", "",
                  _md_table(("stage: reason", "count"), [(k, f"{v:,}") for k, v in stats.rejects.most_common()]),
                  "", "Every rejection is listed with its reason in `rejects.jsonl`.", ""]
    return lines


def _fields_section() -> List[str]:
    from voxbox.reasons import REASONS

    return ["## Fields", "", _md_table(("field", "description"), [
        (f"`{k}`", v) for k, v in FIELD_DESCRIPTIONS.items()]), "",
        "Every null field has its reason in `null_reasons`:", "",
        _md_table(("code", "meaning"), [(f"`{r.code}`", r.meaning) for r in REASONS.values() if r.kind == "null"]),
        ""]


def _license_section(corpora: List[dict]) -> List[str]:
    lines = ["## Licenses and attribution", "",
             "This dataset redistributes audio from the corpora below; each keeps its own license, and using "
             "the data means accepting all of them. Cite and credit the original authors.", ""]
    rows = []
    for c in corpora:
        lic = c["license"] + (f" (also: {', '.join(c['other_licenses'])})" if c["other_licenses"] else "")
        home = f"[{c['homepage']}]({c['homepage']})" if c["homepage"] else ""
        rows.append((c["title"] if c["title"] == c["name"] else f"{c['title']} (`{c['name']}`)", lic,
                     f"`{c['hub_license']}`", home, f"{c['records']:,}", _hours(c["hours"])))
    lines += [_md_table(("corpus", "license", "Hub id", "source", "records", "hours"), rows), ""]
    if any(c["hub_license"] == "other" for c in corpora):
        lines += ["Corpora marked `other` have a license that is not one of the Hub's standard ids, or none "
                  "was recorded; read the source's terms before use.", ""]
    return lines


def _limitations_section(stats) -> List[str]:
    lines = ["## Limitations", ""]
    src_rows = []
    for name in ("gender", "age", "emotion"):
        counts = stats.label_sources.get(name) or {}
        total = sum(counts.values())
        if total:
            parts = ", ".join(f"{k} {v:,} ({v / total:.0%})" for k, v in sorted(counts.items()))
            src_rows.append((name, parts))
    if src_rows:
        lines += ["Where labels come from (native = given by the corpus, predicted = by a model):", "",
                  _md_table(("label", "sources"), src_rows), ""]
    if stats.corrected:
        fixed = ", ".join(f"{k} {v:,}" for k, v in sorted(stats.corrected.items()))
        lines += [f"Labels corrected by hand (with `voxbox serve`, applied by `voxbox build --corrections`): "
                  f"{fixed}. They count as native; `extra.corrected` keeps the old value, who and when.", ""]
    lines += _consistency_lines(stats.gender_consistency.summary())
    return lines + [
        "- Predicted labels (see the `*_source`, `*_model` and `*_confidence` fields) are model outputs and "
        "carry the model's errors and biases; native labels are only as good as the corpus metadata.",
        "- Pitch, speed and the five-level labels are computed from the audio; the level boundaries are "
        "those of the build's pipeline (VoxBox's published percentiles unless it recomputed them: pitch per "
        "gender, speed per language), so levels are relative to VoxBox's data, not necessarily to this one.",
        "- `language` is per utterance and can be wrong for code-switched speech.",
        "- Transcripts are the corpora's own (or ASR for in-the-wild corpora) and are not re-verified.",
        "- Hub splits are the corpora's own splits (`dev` is published as `validation`); a corpus without "
        "splits is all `train`.",
        "",
    ]


def _consistency_lines(summary: Dict[str, dict]) -> List[str]:
    """Gender labels against the gender model's clip answers, per speaker."""
    what = {"native": "native gender labels checked by the gender model",
            "vote": "genders set by speaker vote, against each clip's own prediction"}
    lines: List[str] = []
    for kind, s in summary.items():
        lines += [f"Speaker consistency ({what[kind]}): {s['speakers']:,} speakers, {s['clips']:,} clips, "
                  f"{s['disagree']:,} disagreeing ({s['rate']:.1%}); {s['flagged_total']:,} speakers flagged"
                  + (":" if s["flagged"] else "."), ""]
        if s["flagged"]:
            lines += [_md_table(("speaker", "gender", "clips", "disagree"),
                                [(f"`{f['speaker']}`", f["gender"], f["clips"], f"{f['rate']:.0%}")
                                 for f in s["flagged"]]), ""]
    return lines


def split_front_matter(text: str) -> Tuple[dict, str]:
    """Parse a card back into (metadata, body); raises ValueError if the header is malformed."""
    import yaml

    if not text.startswith("---\n"):
        raise ValueError("card has no YAML front matter")
    end = text.find("\n---\n", 4)
    if end < 0:
        raise ValueError("card's YAML front matter is not terminated")
    meta = yaml.safe_load(text[4:end])
    if not isinstance(meta, dict):
        raise ValueError("card's YAML front matter is not a mapping")
    return meta, text[end + 5:]
