"""Your own recordings: a folder of audio plus either sidecar transcripts
(``clip.wav`` + ``clip.txt``) or one CSV/TSV/JSONL metadata file whose columns are
named by options (``voxbox prepare folder --root DIR -O metadata=meta.csv
-O text_column=sentence``).

``--segment vad`` (``-O segment=vad``) cuts every recording into utterance spans with
Silero VAD (:mod:`voxbox.sources.vad`): one span record per segment, no transcript needed
(a transcript of the whole recording does not belong to any segment, so it is not used;
the annotate stage's ``asr_model`` writes each segment's text).
"""

from __future__ import annotations

import json
import posixpath
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from voxbox.errors import VoxboxError, first_line
from voxbox.limits import MAX_TABLE_BYTES, MAX_TEXT_CHARS, FileRefused, read_regular
from voxbox.record import AGE_GROUPS
from voxbox.sources.corpora.base import (InputError, Item, Recipe, RecipeOption, Skip, csv_table, is_audio,
                                         item_header, map_age_years, map_emotion, map_gender, read_text_file,
                                         reject, unexplained, walk)

SEGMENTERS = ("", "vad")


def _age(value: str) -> Optional[str]:
    v = str(value).strip()
    for g in AGE_GROUPS:
        if v.lower() == g.lower():
            return g
    return map_age_years(v)


class Folder(Recipe):
    """Your own recordings: audio plus sidecar .txt transcripts or one CSV/TSV/JSONL file."""

    name = "folder"
    non_emotional = False  # unknown, not "UNKNOWN": leave emotion to the annotator
    options = {
        "metadata": RecipeOption("", "CSV/TSV/JSONL file (relative to the root, or absolute); "
                                     "empty = sidecar .txt transcripts next to each audio file"),
        "delimiter": RecipeOption("", "CSV delimiter; default: tab for .tsv, comma otherwise"),
        "path_column": RecipeOption("path", "metadata column with the audio path (relative to the root)"),
        "text_column": RecipeOption("text", "metadata column with the transcript"),
        "speaker_column": RecipeOption("", "metadata column with the speaker id"),
        "id_column": RecipeOption("", "metadata column with your own utterance id (utt_id); "
                                      "default: the audio path without its extension"),
        "gender_column": RecipeOption("", "metadata column with the gender (f/m/female/male)"),
        "age_column": RecipeOption("", "metadata column with the age in years or a VoxBox age group"),
        "emotion_column": RecipeOption("", "metadata column with an emotion word (mapped to the 25 classes)"),
        "language_column": RecipeOption("", "metadata column with the language code"),
        "split_column": RecipeOption("", "metadata column with the split (train/dev/test)"),
        "text_ext": RecipeOption(".txt", "sidecar transcript extension"),
        "speaker": RecipeOption("", "speaker id for every file; default: the first sub-folder, else none"),
        "gender": RecipeOption("", "gender for every file (female/male)"),
        "language": RecipeOption("", "language code for every file, e.g. en or zh"),
        "license": RecipeOption("", "license of the recordings"),
        "segment": RecipeOption("", "vad: cut each recording into utterances with Silero VAD (span records, no "
                                    "transcript needed; text from annotate --asr-model); empty: one record per file"),
        "vad_threshold": RecipeOption(0.5, "with segment=vad: speech probability a segment starts at (0-1; lower "
                                           "keeps quieter speech)"),
        "vad_min_duration": RecipeOption(1.0, "with segment=vad: shortest segment kept, seconds (shorter ones are "
                                              "counted as skipped)"),
        "vad_max_duration": RecipeOption(20.0, "with segment=vad: longest segment, seconds; longer speech is cut "
                                               "at its least speech-like moment"),
        "vad_padding": RecipeOption(0.2, "with segment=vad: silence kept before and after each segment, seconds"),
        "vad_min_silence": RecipeOption(0.3, "with segment=vad: pauses shorter than this stay inside a segment, "
                                             "seconds"),
    }

    @property
    def license(self) -> Optional[str]:
        return self.opts["license"] or None

    @property
    def language(self) -> Optional[str]:
        return self.opts["language"] or None

    def _common(self, rel: str) -> Dict:
        spk = self.opts["speaker"] or (rel.split("/")[0] if "/" in rel else None)
        # The path without its extension is unique in the folder: a fine id for your own data.
        return {"speaker": spk, "gender": map_gender(self.opts["gender"]) if self.opts["gender"] else None,
                "utt_id": posixpath.splitext(rel)[0]}

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        if subsets:
            raise VoxboxError("folder: has no subsets; select files with the metadata file instead")
        if self.opts["gender"] and not map_gender(self.opts["gender"]):
            raise VoxboxError(f"folder: option gender must be female or male, got {self.opts['gender']!r}")
        if self.opts["segment"] not in SEGMENTERS:
            raise VoxboxError(f"folder: option segment must be vad or empty, got {self.opts['segment']!r}")
        items = self._from_metadata(base) if self.opts["metadata"] else self._from_sidecars(base)
        if not self.opts["segment"]:
            yield from items
            return
        from voxbox.sources.vad import SileroVad

        cfg, vad = self.vad_config(), SileroVad()
        for x in items:
            yield from self._segmented(base, x, vad, cfg) if isinstance(x, Item) else (x,)

    # -- VAD segments -----------------------------------------------------------------
    def vad_config(self):
        from voxbox.sources.vad import VadConfig

        values = {}
        for name in ("threshold", "min_duration", "max_duration", "padding", "min_silence"):
            raw = self.opts[f"vad_{name}"]
            try:
                values[name] = float(raw)
            except (TypeError, ValueError):
                raise VoxboxError(f"folder: option vad_{name} must be a number, got {raw!r}") from None
        cfg = VadConfig(**values)
        try:
            cfg.check()
        except VoxboxError as e:
            raise VoxboxError(f"folder: {e}") from None
        return cfg

    def _segmented(self, base: Path, item: Item, vad, cfg) -> Iterator:
        """One span item per VAD segment of the item's recording; a rejection when the
        recording cannot be read or holds no segment to keep."""
        from voxbox.sources import vad as v

        try:
            header = item_header(base, item.path, self.check_tail)
            track = _vad_track(base / item.path, vad)
        except InputError as e:
            yield reject(item.path, e.reason, e.detail, self.name)
            return
        sr, frames = header[0], header[1]
        segs, short = v.segments(track, cfg, sr, frames)
        if not segs:
            why = f"{short} speech region(s), all shorter than vad_min_duration {cfg.min_duration:g} s" if short \
                else f"no window reaches vad_threshold {cfg.threshold:g}"
            yield reject(item.path, "no_speech", f"VAD: {why}", self.name)
            return
        fields = {k: val for k, val in item.fields.items() if k != "text"}
        for n, seg in enumerate(segs):
            f = {**fields, "utt_id": f"{fields['utt_id']}_{n:04d}",
                 "span_offset": round(seg.start / sr, 6), "span_duration": round(seg.count / sr, 6)}
            extra = {**item.extra, "vad_segment": n, "vad_speech_prob": seg.speech_prob}
            yield Item(item.path, f, extra, header=header, key=f"{item.path}#{n:04d}")
        for _ in range(short):
            yield Skip(item.path, "short_vad_segment")

    # -- sidecar transcripts ------------------------------------------------------------
    def _from_sidecars(self, base: Path) -> Iterator:
        ext = self.opts["text_ext"]
        paths = list(walk(base))  # one folder listing, needed to tell orphans from sidecars
        audio_stems = {p.rsplit(".", 1)[0] for p in paths if is_audio(p)}
        for p in paths:
            if is_audio(p):
                stem = p.rsplit(".", 1)[0]
                if self.opts["segment"]:  # segments need no transcript (ASR writes theirs)
                    yield Item(p, self._common(p))
                    continue
                try:
                    text = read_text_file(base / (stem + ext))
                except InputError as e:
                    yield reject(p, e.reason, e.detail, self.name)
                    continue
                yield Item(p, {**self._common(p), "text": text})
            elif p.endswith(ext) and p[: -len(ext)] in audio_stems:
                continue
            else:
                yield unexplained(p, "not audio and not the transcript of an audio file")

    # -- one metadata file ----------------------------------------------------------------
    def _rows(self, path: Path) -> Iterator:
        try:
            raw = read_regular(path, MAX_TABLE_BYTES)
        except FileRefused as e:
            raise VoxboxError(f"folder: cannot read metadata {path}: {e.detail}") from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise VoxboxError(f"folder: metadata {path} is not UTF-8 (byte {e.start}); re-save it as UTF-8") from None
        if path.suffix.lower() in (".jsonl", ".json"):
            for n, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    if not isinstance(row, dict):
                        raise ValueError("not an object")
                except ValueError as e:
                    yield n, None, f"line {n}: {e}"
                    continue
                yield n, row, None
            return
        delim = self.opts["delimiter"] or ("\t" if path.suffix.lower() == ".tsv" else ",")
        header, rows = csv_table(text, delim)
        if not header:
            raise VoxboxError(f"folder: metadata {path} is empty")
        # Every column the options name must exist: a misspelt text_column used to reject
        # every row as missing_transcript instead of saying so.
        for opt in sorted(k for k in self.opts if k.endswith("_column")):
            col = self.opts[opt]
            if col and col not in header:
                shown = ", ".join(header)
                shown = shown if len(shown) <= 120 else shown[:120] + "..."
                raise VoxboxError(f"folder: metadata {path} has no column '{col}' "
                                  f"(columns: {shown}); set -o {opt}=NAME")
        yield from rows

    def _from_metadata(self, base: Path) -> Iterator:
        meta = Path(self.opts["metadata"]).expanduser()
        meta = meta if meta.is_absolute() else base / meta
        o = self.opts
        listed = set()
        for n, row, err in self._rows(meta):
            where = f"{meta.name}:{n}"
            if err:
                yield reject(where, "bad_metadata", err)
                continue
            path = str(row.get(o["path_column"]) or "").strip().replace("\\", "/")
            while path.startswith("./"):
                path = path[2:]
            if not path:
                yield reject(where, "bad_metadata", f"no value in column '{o['path_column']}'")
                continue
            if posixpath.isabs(path) or ".." in path.split("/"):
                yield reject(where, "bad_metadata", f"path {path!r} must be relative to the root, without '..'")
                continue
            listed.add(path)
            text = " ".join(str(row.get(o["text_column"]) or "").split())
            if o["segment"]:
                text = None  # a recording's transcript belongs to none of its segments
            elif not text or len(text) > MAX_TEXT_CHARS:
                why = f"empty column '{o['text_column']}'" if not text else \
                    f"column '{o['text_column']}' holds {len(text)} characters (at most {MAX_TEXT_CHARS})"
                yield reject(path, "text_too_long" if text else "missing_transcript", f"{where}: {why}", self.name)
                continue
            fields = {**self._common(path), "text": text}
            extra: Dict = {}
            if o["id_column"] and row.get(o["id_column"]) not in (None, ""):
                fields["utt_id"] = str(row[o["id_column"]]).strip()
            if o["speaker_column"] and row.get(o["speaker_column"]) not in (None, ""):
                fields["speaker"] = str(row[o["speaker_column"]]).strip()
            if o["gender_column"] and row.get(o["gender_column"]) not in (None, ""):
                fields["gender"] = map_gender(row[o["gender_column"]])
                if fields["gender"] is None:
                    extra["native_gender"] = row[o["gender_column"]]
            if o["age_column"] and row.get(o["age_column"]) not in (None, ""):
                fields["age"] = _age(row[o["age_column"]])
                extra["native_age"] = str(row[o["age_column"]])
            if o["emotion_column"] and row.get(o["emotion_column"]) not in (None, ""):
                fields["emotion"] = map_emotion(row[o["emotion_column"]])
                extra["native_emotion"] = str(row[o["emotion_column"]])
            if o["language_column"] and row.get(o["language_column"]):
                fields["language"] = str(row[o["language_column"]]).strip()
            if o["split_column"] and row.get(o["split_column"]):
                fields["split"] = str(row[o["split_column"]]).strip()
            yield Item(path, fields, extra)
        meta_rel = None
        try:
            meta_rel = meta.resolve().relative_to(base).as_posix()
        except ValueError:
            pass
        for p in walk(base):
            if p in listed or p == meta_rel:
                continue
            yield unexplained(p, "audio not listed in the metadata file" if is_audio(p) else "")


def _vad_track(path, vad):
    """The recording's VAD track, decoded block by block; InputError on unusable audio."""
    from voxbox.sources.vad import read_mono16

    try:
        with _open_audio(path) as fh:
            return vad.track(read_mono16(fh))
    except InputError:
        raise
    except ValueError as e:
        if str(e) == "non_finite":
            raise InputError("non_finite_samples", "NaN or infinite samples") from None
        raise InputError("unreadable_audio", first_line(e, "")) from None
    except Exception as e:  # libsndfile's and soxr's errors vary by format and version
        msg = first_line(e)
        raise InputError("unreadable_audio", msg) from None


def _open_audio(path):
    """A local recording opened as a regular file, or a remote one (voxbox.storage) read whole."""
    import io

    from voxbox import media, storage
    from voxbox.limits import open_regular

    try:
        if storage.is_remote(path):
            return io.BytesIO(media.location_bytes(media.Location(storage.as_remote(path))))
        return open_regular(path, missing="missing_audio")
    except FileRefused as e:
        raise InputError(e.reason, e.detail) from None
    except media.MediaError as e:
        raise InputError(e.reason, str(e)) from None
