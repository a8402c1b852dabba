"""WenetSpeech4TTS: ``<tier>/WenetSpeech4TTS_<tier>_<n>/{wavs,txts}/<id>.{wav,txt}`` (or the
``WenetSpeech4TTS_<tier>_<n>.tar.gz`` holding that folder) + ``DNSMOS_P808Scores/<tier>_DNSMOS.lst``.

Layout facts: spec/voxbox-sources.md, WenetSpeech4TTS section [S10, S14]: tiers Premium,
Standard, Basic; each txt's line 1 is ``<id><TAB><text>`` and line 2 timestamps;
per-tier DNSMOS lists; published cuts Premium >= 4.0, Standard >= 3.8, Basic >= 3.6
(P.808). That the HF repository ships each folder as a ``.tar.gz`` is from the issue,
NOT CHECKED against the card; the DNSMOS list's columns (id then score, whitespace) are
NOT CHECKED either. Tarball members are read in one sequential pass, never extracted
(see :mod:`.archives`; ``-o extract=true`` extracts once instead).

Subsets are the tier folders as shipped. The published tiers are nested by their
DNSMOS cut (Basic >= 3.6 holds Standard >= 3.8 holds Premium >= 4.0), so "the Basic
set" is all three folders: ``-s Premium -s Standard -s Basic``.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from voxbox.errors import VoxboxError
from voxbox.record import Rejection
from voxbox.sources.corpora.archives import EXTRACT_OPTION, is_archive, list_archive
from voxbox.sources.corpora.base import Item, Recipe, read_table_lines, reject, unexplained, walk

TIERS = ("Premium", "Standard", "Basic")
_PART = re.compile(r"^WenetSpeech4TTS_(?P<tier>Premium|Standard|Basic)_\d+(\.tar\.gz)?$")


class WenetSpeech4TTS(Recipe):
    name = "wenetspeech4tts"
    subset_help = "tiers Premium, Standard, Basic (folders as shipped; the published Basic set is all three)"
    top_dirs = ("WenetSpeech4TTS",)
    options = {"extract": EXTRACT_OPTION}

    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator:
        tiers = [t for t in TIERS if (base / t).is_dir()]
        if not tiers:
            raise VoxboxError(f"wenetspeech4tts: no Premium/, Standard/ or Basic/ folder under {base}")
        for tier in self.check_subsets(subsets, tiers):
            dnsmos = self._dnsmos(base, tier)
            for part in sorted(p.name for p in (base / tier).iterdir()):
                rel = f"{tier}/{part}"
                if not _PART.match(part):
                    yield unexplained(rel)
                    continue
                if is_archive(part):
                    yield from self._archive(base, rel, tier, dnsmos)
                elif (base / rel).is_dir():
                    yield from self._part(base, rel, tier, dnsmos)
                else:
                    yield unexplained(rel)

    def _part(self, base: Path, folder: str, tier: str, dnsmos: Dict[str, float]) -> Iterator:
        for p in walk(base, f"{folder}/wavs") if (base / folder / "wavs").is_dir() else ():
            if not p.endswith(".wav"):
                yield unexplained(p)
                continue
            utt = p.rsplit("/", 1)[-1][:-4]
            lines, err = read_table_lines(base / folder / "txts" / f"{utt}.txt")
            yield self._item(p, utt, lines, err, tier, dnsmos)

    def _archive(self, base: Path, rel: str, tier: str, dnsmos: Dict[str, float]) -> Iterator:
        """A ``WenetSpeech4TTS_<tier>_<n>.tar.gz``: ``[<folder>/]wavs/<id>.wav`` members, each
        with ``[<folder>/]txts/<id>.txt``, from one sequential pass."""
        listing = list_archive(base, rel, self.name, self.opts["extract"], self.check_tail)
        if isinstance(listing, Rejection):
            yield listing
            return
        for name in listing.other:
            yield unexplained(listing.path(name), f"member of {rel} the layout does not explain")
        for name in listing.audio:
            folder, _, file = name.rpartition("/")
            utt = file[:-4]
            if not name.endswith(".wav") or posixpath.basename(folder) != "wavs":
                yield unexplained(listing.path(name), f"member of {rel} outside wavs/")
                continue
            raw = listing.texts.get(posixpath.join(posixpath.dirname(folder), "txts", f"{utt}.txt"))
            lines, err = [], "no txts/ member" if raw is None else None
            if raw is not None:
                try:
                    lines = raw.decode("utf-8-sig").splitlines()
                except UnicodeDecodeError as e:
                    err = f"not UTF-8 at byte {e.start}"
            yield self._item(listing.path(name), utt, lines, err, tier, dnsmos, listing.headers.get(name))

    def _item(self, path: str, utt: str, lines: List[str], err: Optional[str], tier: str,
              dnsmos: Dict[str, float], header=None):
        first = lines[0].split("\t", 1) if lines else []
        if err or len(first) != 2 or not first[1].strip():
            reason = "text_not_utf8" if err and "UTF-8" in err else "missing_transcript"
            return reject(path, reason, err or f"txts/{utt}.txt has no '<id><TAB><text>' first line", self.name)
        return Item(path, {"text": " ".join(first[1].split())},
                    {"tier": tier, "dnsmos_p808": dnsmos.get(utt),
                     "timestamps": lines[1].strip() if len(lines) > 1 else None}, header=header)

    @staticmethod
    def _dnsmos(base: Path, tier: str) -> Dict[str, float]:
        out: Dict[str, float] = {}
        for line in read_table_lines(base / "DNSMOS_P808Scores" / f"{tier}_DNSMOS.lst")[0]:
            cols = line.split()
            try:
                out[cols[0].rsplit("/", 1)[-1].removesuffix(".wav")] = float(cols[-1])
            except (IndexError, ValueError):
                continue
        return out
