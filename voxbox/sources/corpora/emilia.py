"""Emilia / Emilia-YODAS: WebDataset tars ``<LANG>/<LANG>-B000000.tar`` (``<id>.mp3`` +
``<id>.json``), or the first open release's ``<LANG>/<LANG>_B00000.jsonl`` + mp3 folders.

Layout facts: spec/voxbox-sources.md, Emilia section [S10] (lhotse's emilia recipe: the
JSONL keys ``id, wav, text, duration, speaker, language, dnsmos``; mp3 under
``<LANG>_B00000/<LANG>_B00000_S00000/mp3/<id>.mp3``; "the HF version is webdataset tar
shards"). The tar naming ``<LANG>-B000000.tar`` under ``Emilia/`` and ``Emilia-YODAS/``
follows the issue's description of the HF dataset (amphion/Emilia-Dataset, gated) and is
NOT CHECKED against the card. Tar members are read in place, never extracted (see
:mod:`.archives`; ``-o extract=true`` extracts once instead).

Native labels: text (ASR), speaker (per-video cluster id), language, DNSMOS (kept as
``extra["dnsmos"]``, the source's own score). No gender, age or emotion.
"""

from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path
from typing import Iterator, List, Optional

from voxbox.errors import VoxboxError
from voxbox.record import Rejection
from voxbox.sources.corpora.archives import EXTRACT_OPTION, list_archive
from voxbox.sources.corpora.base import Item, Recipe, reject, unexplained, walk
from voxbox.sources.corpora.common import json_lines, table_error

_TAR = re.compile(r"^(?P<lang>[A-Z]{2})-B\d{6}\.tar$")
_JSONL = re.compile(r"^(?P<lang>[A-Z]{2})_B\d{5}\.jsonl$")
TOPS = ("", "Emilia", "Emilia-YODAS", "raw")


class Emilia(Recipe):
    name = "emilia"
    subset_help = "language folders (EN, ZH, DE, FR, JA, KO); VoxBox used EN and ZH"
    options = {"extract": EXTRACT_OPTION}

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        folders = [(top, d.name) for top in TOPS if (base / top).is_dir()
                   for d in sorted((base / top).iterdir()) if d.is_dir() and re.fullmatch(r"[A-Z]{2}", d.name)]
        if not folders:
            raise VoxboxError(f"emilia: no language folder (EN, ZH, ...) under {base}, Emilia/ or Emilia-YODAS/")
        chosen = self.check_subsets(subsets, sorted({lang for _, lang in folders}))
        for top, lang in folders:
            if lang not in chosen:
                continue
            folder = f"{top}/{lang}" if top else lang
            for p in walk(base, folder):
                name = p.rsplit("/", 1)[-1]
                if _TAR.match(name) and p.count("/") == folder.count("/") + 1:
                    yield from self._tar(base, p, top)
                elif _JSONL.match(name) and p.count("/") == folder.count("/") + 1:
                    yield from self._jsonl(base, p, top)
                elif not (name.endswith(".mp3") or name.endswith(".json")):
                    yield unexplained(p)

    def _tar(self, base: Path, tar: str, top: str) -> Iterator:
        listing = list_archive(base, tar, self.name, self.opts["extract"], self.check_tail)
        if isinstance(listing, Rejection):
            yield listing
            return
        for name in listing.other:
            if not name.endswith(".json"):
                yield unexplained(listing.path(name), f"member of {tar} that is neither mp3 nor json")
        for name in listing.audio:
            path = listing.path(name)
            raw = listing.texts.get(posixpath.splitext(name)[0] + ".json")
            if raw is None:
                yield reject(path, "bad_metadata", f"{tar}: no json member for {name}", self.name)
                continue
            try:
                row = json.loads(raw.decode("utf-8-sig"))
            except UnicodeDecodeError as e:
                yield reject(path, "text_not_utf8", f"{tar}: json member, byte {e.start}: {e.reason}", self.name)
                continue
            except ValueError as e:
                yield reject(path, "bad_metadata", f"{tar}: json member is not JSON ({e})", self.name)
                continue
            if not isinstance(row, dict):
                yield reject(path, "bad_metadata", f"{tar}: json member is not an object", self.name)
                continue
            yield self._item(path, row, top, tar)

    def _jsonl(self, base: Path, table: str, top: str) -> Iterator:
        rows, err = json_lines(base / table)
        if err:
            yield table_error(table, err, self.name)
        folder = posixpath.dirname(table)
        for n, row in rows:
            if isinstance(row, str) or not row.get("wav"):
                yield table_error(f"{table}:{n}", row if isinstance(row, str) else "no wav", self.name)
                continue
            rel = posixpath.normpath(posixpath.join(folder, str(row["wav"])))
            if rel.startswith("../") or posixpath.isabs(str(row["wav"])):
                yield table_error(f"{table}:{n}", f"wav {row['wav']!r} leaves the corpus folder", self.name)
                continue
            yield self._item(rel, row, top, table)

    def _item(self, path: str, row: dict, top: str, source: str):
        text = " ".join(str(row.get("text") or "").split())
        if not text:
            return reject(path, "missing_transcript", f"{source}: no text for {row.get('id')}", self.name)
        lang = str(row.get("language") or "").lower() or None
        utt_id = str(row.get("id") or posixpath.splitext(posixpath.basename(path))[0])  # Emilia's own id
        return Item(path, {"text": text, "speaker": row.get("speaker"), "language": lang, "utt_id": utt_id},
                    {"dnsmos": row.get("dnsmos"), "emilia_duration": row.get("duration"),
                     "emilia_id": row.get("id"), "emilia_part": top or "Emilia", "emilia_source": source})
