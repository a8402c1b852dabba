"""lhotse manifests as a voxbox source: every lhotse recipe becomes a corpus voxbox builds.

Give a CutSet (``-O cuts=cuts.jsonl.gz``), or recordings + supervisions manifests
(``-O recordings=... -O supervisions=...``), or nothing and let the recipe find
``*cuts*.jsonl*`` or one ``*recordings*`` + ``*supervisions*`` pair in ``--root``. From
Python the options may be lhotse objects: ``get_recipe("lhotse", cuts=my_cutset)``.
``voxbox build --manifest cuts.jsonl.gz`` routes lhotse manifests here too.

One record per supervision that covers its whole recording (voxbox records are whole
files): ``text``, ``speaker``, ``gender``, ``language`` from the supervision, ``utt_id``
= the supervision id, and any voxbox field found in its ``custom`` (what ``voxbox export
lhotse`` wrote: labels, split, tokens ...). Relative audio paths resolve against
``--root`` (lhotse resolves them against the working folder, the default root here).
Supervisions of part of a recording, audio that is not a plain file (URLs, memory,
commands, Shar) and cuts without a supervision are rejected with a reason; headers are
read and checked as for every recipe.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

from voxbox.errors import VoxboxError
from voxbox.record import FIELD_NAMES, Rejection, Utterance, make_index
from voxbox.sources.corpora.base import STAGE, Item, Recipe, RecipeOption, map_emotion, map_gender

# Tolerance for "the supervision covers the whole recording" (lhotse recipes round durations).
_WHOLE_FILE_SLACK = 0.05
# Record fields a supervision's custom may not set: they describe the audio file voxbox reads.
_NOT_FROM_CUSTOM = frozenset(("index", "corpus_root", "source_path", "sample_rate", "num_samples", "channels",
                              "wav_path", "null_reasons", "extra"))
_LANGUAGES = {"english": "en", "chinese": "zh", "mandarin": "zh", "german": "de", "french": "fr",
              "spanish": "es", "italian": "it", "japanese": "ja", "korean": "ko", "portuguese": "pt",
              "russian": "ru", "dutch": "nl", "polish": "pl", "cantonese": "yue", "arabic": "ar"}


def language_code(value: Optional[str]) -> Optional[str]:
    """lhotse's language names ("English") as the codes voxbox records use ("en")."""
    if not value:
        return None
    v = str(value).strip().lower()
    if v in _LANGUAGES:
        return _LANGUAGES[v]
    return v if v.replace("-", "").isalpha() and len(v) <= 5 else None


def manifest_kind(path: Union[str, Path]) -> Optional[str]:
    """``cuts``, ``recordings`` or ``supervisions`` for a lhotse JSONL manifest, None for
    anything else (a voxbox manifest, other JSON), judged by its first line."""
    import gzip
    import json

    name = str(path)
    if not name.endswith((".jsonl", ".jsonl.gz")) or not Path(path).is_file():
        return None
    try:
        with (gzip.open if name.endswith(".gz") else open)(path, "rt", encoding="utf-8") as fh:
            first = json.loads(fh.readline() or "null")
    except (OSError, ValueError, EOFError):
        return None
    if not isinstance(first, dict) or "index" in first:
        return None
    if "supervisions" in first or str(first.get("type", "")).endswith("Cut"):
        return "cuts"
    if "sources" in first and "sampling_rate" in first:
        return "recordings"
    if "recording_id" in first and "start" in first:
        return "supervisions"
    return None


def _given(value: Any) -> bool:
    """An option that names a manifest (a path or a lhotse object; "" is the unset default)."""
    return value is not None and not (isinstance(value, str) and value == "")


def _load(value: Any, kind: str):
    """A lhotse manifest from a path (lazily for cuts) or the object itself."""
    try:
        import lhotse
    except ImportError:
        raise VoxboxError("reading lhotse manifests needs lhotse: pip install 'voxbox[lhotse]'") from None
    if not isinstance(value, (str, Path)):
        return value
    if not Path(value).is_file():
        raise VoxboxError(f"{value}: lhotse {kind} manifest not found")
    cls = {"cuts": lhotse.CutSet, "recordings": lhotse.RecordingSet, "supervisions": lhotse.SupervisionSet}[kind]
    try:
        return cls.from_jsonl_lazy(value) if kind == "cuts" and str(value).endswith((".jsonl", ".jsonl.gz")) \
            else cls.from_file(value)
    except Exception as e:  # noqa: BLE001 - lhotse raises many kinds on a bad file
        raise VoxboxError(f"{value}: not a readable lhotse {kind} manifest ({str(e).splitlines()[0]})") from None


class Lhotse(Recipe):
    """Any lhotse recipe's output: a CutSet, or recordings + supervisions manifests."""

    name = "lhotse"
    subset_help = "none (select with the manifests you give)"
    options = {
        "cuts": RecipeOption("", "lhotse CutSet manifest (cuts.jsonl.gz); or a CutSet from Python"),
        "recordings": RecipeOption("", "lhotse RecordingSet manifest (with supervisions=)"),
        "supervisions": RecipeOption("", "lhotse SupervisionSet manifest (with recordings=)"),
        "corpus": RecipeOption("", "corpus name for the records (default: the custom 'corpus', else lhotse)"),
        "split": RecipeOption("train", "split of every record unless its supervision's custom says otherwise"),
        "language": RecipeOption("", "language code of records whose supervision names none"),
        "license": RecipeOption("", "license of the audio"),
    }

    @property
    def license(self) -> Optional[str]:
        return self.opts["license"] or None

    @staticmethod
    def default_root() -> Path:
        """Relative audio paths in lhotse manifests are relative to the working folder."""
        return Path.cwd()

    # -- the manifests ---------------------------------------------------------------
    def pairs(self, root: Path) -> Iterator[Tuple[Any, Any, Optional[str]]]:
        """``(recording, supervision or None, problem)`` for every item of the manifests."""
        o = self.opts
        if not any(_given(o[k]) for k in ("cuts", "recordings", "supervisions")):
            o = {**o, **self.find_manifests(root)}
        if _given(o["cuts"]):
            yield from self._cut_pairs(_load(o["cuts"], "cuts"))
            return
        if not (_given(o["recordings"]) and _given(o["supervisions"])):
            raise VoxboxError("lhotse: give cuts=, or both recordings= and supervisions=")
        recordings = {r.id: r for r in _load(o["recordings"], "recordings")}
        used = set()
        for sup in _load(o["supervisions"], "supervisions"):
            rec = recordings.get(sup.recording_id)
            used.add(sup.recording_id)
            yield rec, sup, None if rec is not None else f"recording {sup.recording_id} not in the recordings"
        for rid in sorted(set(recordings) - used):
            yield recordings[rid], None, "recording without a supervision (no transcript)"

    @staticmethod
    def _cut_pairs(cuts) -> Iterator[Tuple[Any, Any, Optional[str]]]:
        for cut in cuts:
            rec = getattr(cut, "recording", None)
            sups = list(getattr(cut, "supervisions", []) or [])
            if rec is None:
                yield None, sups[0] if sups else None, f"cut {cut.id} has no recording"
            elif len(sups) != 1:
                yield rec, None, (f"cut {cut.id} has {len(sups)} supervisions; voxbox records are whole files "
                                  "with one transcript")
            elif abs(cut.start) > _WHOLE_FILE_SLACK or abs(cut.duration - rec.duration) > _WHOLE_FILE_SLACK:
                yield rec, sups[0], f"cut {cut.id} covers {cut.start:.2f}-{cut.end:.2f} s of a {rec.duration:.2f} s recording"
            else:
                yield rec, sups[0], None

    def find_manifests(self, root: Path) -> Dict[str, str]:
        files = sorted(p for p in root.iterdir() if p.is_file() and p.name.endswith((".jsonl", ".jsonl.gz")))
        kinds: Dict[str, List[Path]] = {}
        for p in files:
            kind = manifest_kind(p)
            if kind:
                kinds.setdefault(kind, []).append(p)
        if len(kinds.get("cuts", [])) == 1:
            return {"cuts": str(kinds["cuts"][0])}
        if len(kinds.get("recordings", [])) == 1 and len(kinds.get("supervisions", [])) == 1:
            return {"recordings": str(kinds["recordings"][0]), "supervisions": str(kinds["supervisions"][0])}
        found = ", ".join(f"{len(v)} {k}" for k, v in sorted(kinds.items())) or "no lhotse manifest"
        raise VoxboxError(f"lhotse: found {found} in {root}; name them with -O cuts=FILE, or -O recordings=FILE "
                          "-O supervisions=FILE")

    # -- records -----------------------------------------------------------------------
    def scan(self, base: Path, subsets: Optional[List[str]]) -> Iterator[Union[Item, Rejection]]:
        if subsets:
            raise VoxboxError("lhotse: has no subsets; give the manifests of the part you want")
        for rec, sup, problem in self.pairs(base):
            yield self.item(base, rec, sup, problem)

    def item(self, base: Path, rec, sup, problem: Optional[str]) -> Union[Item, Rejection]:
        key = (sup.id if sup is not None else rec.id if rec is not None else "?")
        corpus = self._corpus(sup)
        where = rec.id if rec is not None else key
        if problem:
            reason = "segment_not_supported" if "covers" in problem or "supervisions;" in problem else (
                "missing_transcript" if sup is None else "missing_audio")
            return Rejection(STAGE, where, reason, make_index(corpus, key), problem)
        if abs(sup.start) > _WHOLE_FILE_SLACK or abs(sup.duration - rec.duration) > _WHOLE_FILE_SLACK:
            return Rejection(STAGE, where, "segment_not_supported", make_index(corpus, key),
                             f"supervision {sup.id} covers {sup.start:.2f}-{sup.end:.2f} s of a "
                             f"{rec.duration:.2f} s recording; voxbox records are whole files")
        if not (sup.text or "").strip():
            return Rejection(STAGE, where, "missing_transcript", make_index(corpus, key),
                             f"supervision {sup.id} has no text")
        if len(rec.sources) != 1 or rec.sources[0].type != "file":
            kinds = ", ".join(s.type for s in rec.sources)
            return Rejection(STAGE, where, "unsupported_audio_source", make_index(corpus, key),
                             f"recording {rec.id} is read from {kinds}; voxbox reads plain audio files")
        return Item(self._rel_path(base, rec.sources[0].source), self._fields(sup, corpus),
                    self._extra(rec, sup))

    def _corpus(self, sup) -> str:
        custom = (getattr(sup, "custom", None) or {}) if sup is not None else {}
        return str(self.opts["corpus"] or custom.get("corpus") or self.name)

    @staticmethod
    def _rel_path(base: Path, source: str) -> str:
        path = Path(source) if os.path.isabs(source) else base / source
        try:
            return path.resolve().relative_to(base).as_posix()
        except ValueError:
            return path.resolve().as_posix()  # outside the root: kept absolute

    def _fields(self, sup, corpus: str) -> Dict[str, Any]:
        custom = dict(sup.custom or {})
        fields = {k: v for k, v in custom.items() if k in FIELD_NAMES and k not in _NOT_FROM_CUSTOM}
        fields.update(corpus=corpus, utt_id=str(custom.get("utt_id") or sup.id), text=sup.text,
                      speaker=sup.speaker, split=str(custom.get("split") or self.opts["split"]))
        fields["gender"] = map_gender(sup.gender) if sup.gender else fields.get("gender")
        fields["language"] = language_code(sup.language) or fields.get("language") or self.opts["language"] or None
        if fields.get("emotion") is not None:
            fields["emotion"] = map_emotion(fields["emotion"])
        return fields

    @staticmethod
    def _extra(rec, sup) -> Dict[str, Any]:
        custom = dict(sup.custom or {})
        extra = dict(custom.get("extra") or {}) if isinstance(custom.get("extra"), dict) else {}
        extra.update(lhotse_supervision_id=sup.id, lhotse_recording_id=rec.id)
        leftovers = {k: v for k, v in custom.items() if k not in FIELD_NAMES}
        if leftovers:
            extra["lhotse_custom"] = leftovers
        if sup.language and not language_code(sup.language):
            extra["native_language"] = sup.language
        return extra

    def make_record(self, root: Path, item: Item, header) -> Utterance:
        rec = super().make_record(root, item, header)
        # The id is the supervision's, not the path's: the same manifest on another
        # machine (other absolute paths) gives the same indices.
        return rec.replace(index=make_index(rec.corpus, item.extra["lhotse_supervision_id"]))
