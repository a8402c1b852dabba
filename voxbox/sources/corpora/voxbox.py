"""The VoxBox release itself: ``metadata/<subset>.jsonl`` + ``audios/<subset>/<subset>_NNNN.tar.gz``.

Layout facts: spec/voxbox.md section 1 "Download" [S1, S4] (per-subset metadata and
numbered ``.tar.gz`` audio shards, e.g. ``casia_0000.tar.gz``) and [S18] (the shards
extract flat, without the ``<subset>/`` prefix that ``wav_path`` carries); the record
format is the 15-key release line [S3]. Shard members are read in place, each
``.tar.gz`` streamed in one sequential pass (see :mod:`.archives`; ``-o extract=true``
extracts once instead); audio already extracted beside the shards
(``audios/<subset>/<file>``) is used as it is.

The release's labels come in as native (gender, age, emotion; values outside VoxBox's
label sets are dropped, the raw value kept in ``extra``). The method's fields (pitch,
pitch_std, speed, durations, syllables) are kept in ``extra["release"]`` and recomputed
by annotate; ``-o keep_release_values=true`` also copies them into the record.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from voxbox.errors import VoxboxError
from voxbox.record import AGE_GROUPS, EMOTIONS, GENDERS, Rejection
from voxbox.sources.corpora.archives import EXTRACT_OPTION, is_archive, list_archive
from voxbox.sources.corpora.base import Item, Recipe, RecipeOption, is_audio, reject, walk
from voxbox.sources.corpora.common import json_lines, table_error

METHOD_FIELDS = ("pitch", "pitch_std", "speed", "duration", "speech_duration", "syllable_num", "syllables")
LABELS = (("gender", GENDERS), ("age", AGE_GROUPS), ("emotion", EMOTIONS))


class VoxBoxRelease(Recipe):
    name = "voxbox"
    subset_help = "release subsets: the names of metadata/<subset>.jsonl (m3ed, casia, emilia_en, ...)"
    non_emotional = False
    options = {"keep_release_values": RecipeOption(False, "copy the release's pitch, pitch_std, speed, "
                                                          "durations and syllables into the record "
                                                          "(always kept in extra.release)"),
               "extract": EXTRACT_OPTION}

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        meta = base / "metadata"
        if not meta.is_dir():
            raise VoxboxError(f"voxbox: no metadata/ folder under {base} (expected metadata/<subset>.jsonl)")
        available = sorted(p.name[:-6] for p in meta.glob("*.jsonl"))
        for subset in self.check_subsets(subsets, available):
            audio = yield from self._audio(base, subset)
            yield from self._rows(base, subset, audio)

    def _audio(self, base: Path, subset: str):
        """basename -> (path relative to base, header already read or None), over files
        beside the shards and every shard's members."""
        found: Dict[str, tuple] = {}
        folder = f"audios/{subset}"
        if not (base / folder).is_dir():
            return found
        for p in walk(base, folder):
            if is_archive(p):
                listing = list_archive(base, p, self.name, self.opts["extract"], self.check_tail)
                if isinstance(listing, Rejection):
                    yield listing
                    continue
                for m in listing.audio:
                    found.setdefault(posixpath.basename(m), (listing.path(m), listing.headers.get(m)))
            elif is_audio(p):
                found.setdefault(posixpath.basename(p), (p, None))
        return found

    def _rows(self, base: Path, subset: str, audio: Dict[str, tuple]) -> Iterator:
        table = f"metadata/{subset}.jsonl"
        rows, err = json_lines(base / table)
        if err:
            yield table_error(table, err, self.name)
        for n, row in rows:
            if isinstance(row, str) or not row.get("wav_path"):
                yield table_error(f"{table}:{n}", row if isinstance(row, str) else "no wav_path", self.name)
                continue
            name = posixpath.basename(str(row["wav_path"]))
            if name not in audio:
                yield reject(f"audios/{subset}/{name}", "missing_audio",
                             f"{table}:{n} names {row['wav_path']}; not in audios/{subset}/ or its shards", self.name)
                continue
            path, header = audio[name]
            yield Item(path, *self._fields(row, subset), header=header)

    def _fields(self, row: dict, subset: str):
        fields = {"text": row.get("text") or None, "language": row.get("language") or None,
                  "split": row.get("split") or "train", "utt_id": row.get("index")}
        extra = {"voxbox_subset": subset, "release_wav_path": row["wav_path"],
                 "release": {k: row.get(k) for k in METHOD_FIELDS}}
        for label, allowed in LABELS:
            value = row.get(label)
            fields[label] = value if value in allowed else None
            if value is not None and value not in allowed:
                extra[f"native_{label}"] = value
        if self.opts["keep_release_values"]:
            fields.update({k: row.get(k) for k in METHOD_FIELDS})
        return _known(fields), extra


def _known(fields: dict) -> dict:
    """Fields the record type has (``utt_id`` is new; older record types lack it)."""
    from voxbox.record import FIELD_NAMES

    return {k: v for k, v in fields.items() if k in FIELD_NAMES}
