"""``voxbox build``: pipeline file -> stages -> engine -> shard writers, resumably.

The flow of one build:

1. **Prepare.** The source (a corpus recipe or a manifest) is streamed to a work file
   ``OUT/.work/prepared.jsonl``; only ``(index, offset, size estimate)`` stays in memory.
   Duplicate indices are rejected. The sorted records define the *input fingerprint*.
2. **Check.** An existing folder built from another pipeline or input is refused
   unless ``force``; a folder from the same pipeline and input is resumed.
3. **Plan.** Indices sorted by split, then index, are cut into shards
   (:func:`voxbox.shards.plan_shards`), so shard contents depend only on the input.
4. **Run.** Shards that the journal lists and whose files still match their sha256
   are skipped; the others are streamed through the engine (stages + audio encoding)
   and committed one by one (tmp name, fsync, rename, journal line).
5. **Finish.** ``rejects.jsonl``, ``pipeline.yaml``, ``provenance.json`` and, last,
   ``index.json``. The work folder is removed.

Same input + same pipeline -> byte-identical shards and index, whether the build ran
in one go, was killed and resumed, or ran with more workers or on Ray.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from voxbox.errors import VoxboxError
from voxbox.record import Rejection, Result, Utterance
from voxbox.manifest import read_rejects
from voxbox.shards import index as ix
from voxbox.shards.writer import (DEFAULT_SHARD_MB, DEFAULT_SHARD_RECORDS, ShardCommitter, audio_seconds,
                            check_formats, estimate_bytes, finish, plan_shards, rejects_sort_key)

WORK_DIR = ".work"
DEFAULT_PIPELINE = "voxbox"
DEFAULT_BATCH_SIZE = 16
Log = Callable[[str], None]


# ----------------------------------------------------------------------------------
# Pipelines
# ----------------------------------------------------------------------------------
@dataclass
class Pipeline:
    """A resolved pipeline: stages in order with parameters, output settings."""

    name: str
    stages: List[dict]                  # {"stage": str, "params": dict, "requires": str|None}
    formats: Tuple[str, ...] = ("webdataset", "parquet")
    audio_format: str = "flac"
    shard_mb: float = DEFAULT_SHARD_MB
    shard_records: int = DEFAULT_SHARD_RECORDS
    batch_size: int = DEFAULT_BATCH_SIZE
    source: Optional[str] = None        # where the pipeline came from (file path)

    def active_stages(self) -> List[dict]:
        return [s for s in self.stages if not self.skip_reason(s)]

    @staticmethod
    def skip_reason(entry: dict) -> Optional[str]:
        req = entry.get("requires")
        if req and not (entry.get("params") or {}).get(req):
            return f"no {req} given"
        return None

    def skipped(self) -> List[Tuple[str, str]]:
        return [(s["stage"], self.skip_reason(s)) for s in self.stages if self.skip_reason(s)]

    def skipped_stage(self, name: str) -> Optional[str]:
        """Why stage ``name`` does not run ("no model_dir given", "not in the pipeline"), or None."""
        entries = [s for s in self.stages if s["stage"] == name]
        return self.skip_reason(entries[0]) if entries else "not in the pipeline"

    def identity(self) -> dict:
        """What determines the output bytes (engine settings excluded)."""
        from voxbox.shards.finalize import RECORD_FORMAT

        return {
            "name": self.name,
            "stages": [{"stage": s["stage"], "params": s.get("params") or {}} for s in self.active_stages()],
            "formats": list(self.formats), "audio_format": self.audio_format,
            "shard_mb": self.shard_mb, "shard_records": self.shard_records,
            # Shards of another stored-record layout must not be resumed into this build.
            "record_format": RECORD_FORMAT,
        }

    def fingerprint(self) -> str:
        return ix.sha256_text(ix.canonical_json(self.identity()))

    def to_yaml(self) -> str:
        import yaml

        stages = []
        for s in self.stages:
            d = {"stage": s["stage"], "params": s.get("params") or {}}
            if s.get("requires"):
                d["requires"] = s["requires"]
            why = self.skip_reason(s)
            if why:
                d["skipped"] = why
            stages.append(d)
        doc = {
            "name": self.name, "stages": stages,
            "output": {"formats": list(self.formats), "audio_format": self.audio_format,
                       "shard_mb": self.shard_mb, "shard_records": self.shard_records},
            "engine": {"batch_size": self.batch_size},
        }
        return "# resolved by voxbox build\n" + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def pipeline_file(name_or_path: Optional[Union[str, Path]] = None) -> Path:
    """A pipeline file path: a path as given, or a name shipped in voxbox.pipelines."""
    from voxbox.pipelines import available, pipeline_path

    if name_or_path is None:
        return pipeline_path(DEFAULT_PIPELINE)
    p = Path(name_or_path)
    if p.exists():
        return p
    if p.suffix == "" and str(name_or_path) in available():
        return pipeline_path(str(name_or_path))
    raise VoxboxError(f"{name_or_path}: pipeline file not found (shipped pipelines: {', '.join(available())})")


def load_pipeline(path: Optional[Union[str, Path]] = None, *, name: Optional[str] = None,
                  formats: Optional[Sequence[str]] = None, audio_format: Optional[str] = None,
                  shard_mb: Optional[float] = None, shard_records: Optional[int] = None,
                  batch_size: Optional[int] = None, model_dir: Optional[Union[str, Path]] = None,
                  device: Optional[str] = None, stages: Optional[Sequence[str]] = None,
                  stage_params: Optional[Dict[str, Dict[str, Any]]] = None) -> Pipeline:
    """Read a pipeline YAML (default: the shipped ``voxbox.yaml``) and apply overrides.

    Overrides win over the file: ``model_dir`` / ``device`` go to every stage whose
    params have that key (e.g. tokenize), ``stages`` keeps only the named stages,
    ``stage_params`` merges ``{stage: {param: value}}``.
    """
    import yaml

    path = pipeline_file(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise VoxboxError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("stages", []), list):
        raise VoxboxError(f"{path}: a pipeline is a mapping with a 'stages' list")
    out = raw.get("output") or {}
    eng = raw.get("engine") or {}
    entries = []
    for i, s in enumerate(raw.get("stages") or []):
        if isinstance(s, str):
            s = {"stage": s}
        if not isinstance(s, dict) or not s.get("stage"):
            raise VoxboxError(f"{path}: stage #{i + 1} needs a 'stage' name")
        unknown = set(s) - {"stage", "params", "requires"}
        if unknown:
            raise VoxboxError(f"{path}: stage {s['stage']}: unknown key(s) {', '.join(sorted(unknown))}")
        entries.append({"stage": str(s["stage"]), "params": copy.deepcopy(s.get("params") or {}),
                        "requires": s.get("requires")})
    if stages is not None:
        known = {e["stage"] for e in entries}
        missing = [s for s in stages if s not in known]
        if missing:
            raise VoxboxError(f"stage(s) {', '.join(missing)} not in pipeline {path.name} "
                              f"(it has: {', '.join(e['stage'] for e in entries)})")
        entries = [e for e in entries if e["stage"] in stages]
    for e in entries:
        if model_dir is not None and "model_dir" in e["params"]:
            e["params"]["model_dir"] = str(Path(model_dir).resolve())
        if device is not None and "device" in e["params"]:
            e["params"]["device"] = device
        for k, v in ((stage_params or {}).get(e["stage"]) or {}).items():
            e["params"][k] = v
    try:
        pipe = Pipeline(
            name=str(name or raw.get("name") or DEFAULT_PIPELINE),
            stages=entries,
            formats=check_formats(formats or out.get("formats") or ("webdataset", "parquet"),
                                  audio_format or out.get("audio_format") or "flac"),
            audio_format=str(audio_format or out.get("audio_format") or "flac"),
            shard_mb=float(shard_mb if shard_mb is not None else out.get("shard_mb", DEFAULT_SHARD_MB)),
            shard_records=int(shard_records if shard_records is not None
                              else out.get("shard_records", DEFAULT_SHARD_RECORDS)),
            batch_size=int(batch_size if batch_size is not None else eng.get("batch_size", DEFAULT_BATCH_SIZE)),
            source=str(path),
        )
    except (TypeError, ValueError) as e:
        raise VoxboxError(f"{path}: bad output/engine setting ({e})") from None
    if "." in pipe.name or "/" in pipe.name or not pipe.name:
        raise VoxboxError(f"dataset name {pipe.name!r} may not be empty or contain dots or slashes")
    if pipe.shard_mb <= 0 or pipe.shard_records <= 0 or pipe.batch_size <= 0:
        raise VoxboxError("shard_mb, shard_records and batch_size must be positive")
    return pipe


def make_stages(pipe: Pipeline) -> list:
    """Stage objects for the active stages: a registered name, or ``"module:Class"``
    for a user's own stage that is not registered."""
    import importlib

    from voxbox.stages import Stage, make_stage

    out = []
    for s in pipe.active_stages():
        name, params = s["stage"], s.get("params") or {}
        if ":" in name:
            module, _, cls_name = name.partition(":")
            try:
                cls = getattr(importlib.import_module(module), cls_name)
            except (ImportError, AttributeError) as e:
                raise VoxboxError(f"stage {name}: cannot import it ({e})") from None
            if not (isinstance(cls, type) and issubclass(cls, Stage)):
                raise VoxboxError(f"stage {name}: not a voxbox.stages.Stage subclass")
            out.append(cls(**params))
        else:
            out.append(make_stage(name, **params))
    return out


# ----------------------------------------------------------------------------------
# Prepared input on disk (flat memory)
# ----------------------------------------------------------------------------------
@dataclass
class PreparedInput:
    path: Path
    rejects_path: Path
    keys: Dict[str, Tuple[int, int, int, str]] = field(default_factory=dict)  # index -> (offset, length, est, split)
    fingerprint: str = ""
    audio_seconds: float = 0.0
    roots: set = field(default_factory=set)  # (corpus, corpus_root): for provenance.json, not the records

    def read(self, fh, index: str) -> Utterance:
        off, length = self.keys[index][:2]
        fh.seek(off)
        return Utterance.from_dict(json.loads(fh.read(length).decode("utf-8")))


def _line_identity(d: dict) -> bytes:
    # Where the corpus sits on disk does not change the data: leave corpus_root out.
    d = {k: v for k, v in d.items() if k != "corpus_root"}
    return hashlib.sha256(ix.canonical_json(d).encode("utf-8")).digest()


def prepare_input(source: Iterable[Result], work: Path, audio_format: str, log: Log,
                  progress_desc: str = "prepare") -> PreparedInput:
    from voxbox.progress import Progress

    work.mkdir(parents=True, exist_ok=True)
    prep = PreparedInput(work / "prepared.jsonl", work / "prepare.rejects.jsonl")
    hashes: Dict[str, bytes] = {}
    rejects: List[Rejection] = []
    try:
        with open(prep.path, "wb") as fh, Progress(progress_desc) as bar:
            offset = 0
            for res in source:
                if isinstance(res, Rejection):
                    rejects.append(res)
                    continue
                if not isinstance(res, Utterance):
                    raise VoxboxError(f"the source yielded a {type(res).__name__}, not an Utterance or Rejection")
                d = res.to_dict()
                if res.index in prep.keys:
                    rejects.append(Rejection("prepare", res.source_path or "", "duplicate_index", res.index))
                    continue
                line = (json.dumps(d, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
                fh.write(line)
                prep.keys[res.index] = (offset, len(line), estimate_bytes(res, audio_format), res.split or "")
                if res.corpus_root:
                    prep.roots.add((res.corpus or "", res.corpus_root))
                hashes[res.index] = _line_identity(d)
                offset += len(line)
                secs = audio_seconds(res)
                prep.audio_seconds += secs
                bar.update(1, secs)
        rejects.sort(key=rejects_sort_key)
        with open(prep.rejects_path, "w", encoding="utf-8") as fh:
            for r in rejects:
                fh.write(json.dumps(r.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n")
    except OSError as e:
        raise ix.io_error(work, e) from None
    h = hashlib.sha256()
    for idx in sorted(hashes):
        h.update(f"{idx} {hashes[idx].hex()}\n".encode())
    for r in rejects:
        h.update((ix.canonical_json(r.to_dict()) + "\n").encode("utf-8"))
    prep.fingerprint = h.hexdigest()
    return prep


# ----------------------------------------------------------------------------------
# The output folder
# ----------------------------------------------------------------------------------
_OWN_FILES = (ix.INDEX_NAME, ix.JOURNAL_NAME, ix.PIPELINE_NAME, ix.PROVENANCE_NAME, ix.REJECTS_NAME)


def _clean(out: Path) -> None:
    """Remove what a previous build wrote (only our own names)."""
    for n in _OWN_FILES:
        for p in (out / n, out / (n + ix.PARTIAL_SUFFIX)):
            if p.exists():
                p.unlink()
    for d in ix.FORMAT_DIRS.values():
        sub = out / d
        if sub.is_dir():
            for p in sub.iterdir():
                if p.suffix in (".tar", ".parquet", ix.PARTIAL_SUFFIX):
                    p.unlink()


def _check_foreign(out: Path, force: bool) -> None:
    """Refuse a non-empty folder that no voxbox build made (before writing anything)."""
    ours = (*_OWN_FILES, WORK_DIR, *ix.FORMAT_DIRS.values())
    if (out / ix.JOURNAL_NAME).exists() or (out / ix.INDEX_NAME).exists():
        return
    others = sorted(p.name for p in out.iterdir() if p.name not in ours)
    if others and not force:
        raise VoxboxError(f"{out}: folder is not empty and is not a voxbox build "
                          f"(found {', '.join(others[:3])}); choose another --out")


def _check_existing(out: Path, fingerprint: Dict[str, str], force: bool, log: Log) -> None:
    journal = ix.Journal(out / ix.JOURNAL_NAME)
    start = journal.start()
    old = start.get("fingerprint") if start else None
    if old is None and (out / ix.INDEX_NAME).exists():
        try:
            old = json.loads((out / ix.INDEX_NAME).read_text(encoding="utf-8")).get("fingerprint") or {}
        except (OSError, json.JSONDecodeError):
            old = {}
    if old is None:
        _clean(out)  # leftovers of a run that died before its first journal line
        return
    changed = [k for k in ("pipeline", "input") if old.get(k) != fingerprint[k]]
    if not changed:
        return
    if not journal.shards() and not (out / ix.INDEX_NAME).exists():
        # The earlier run failed before finishing any shard (say, a wrong model folder):
        # nothing to protect, so the corrected command just starts over.
        log(f"{out}: the previous run finished no shard; starting over")
        _clean(out)
        return
    what = " and ".join({"pipeline": "a different pipeline", "input": "different input"}[k] for k in changed)
    if not force:
        shutil.rmtree(out / WORK_DIR, ignore_errors=True)
        raise VoxboxError(f"{out}: this folder was built from {what}; "
                          f"use another --out, or --force to rebuild it from scratch")
    log(f"--force: {out} was built from {what}; rebuilding from scratch")
    _clean(out)


# ----------------------------------------------------------------------------------
# The build
# ----------------------------------------------------------------------------------
def _tasks(prep: PreparedInput, plan: List[List[str]], todo: List[int], batch_size: int) -> Iterator:
    from voxbox.build.engine.common import Task

    with open(prep.path, "rb") as fh:
        for k in todo:
            members = plan[k]
            batches = [members[i:i + batch_size] for i in range(0, len(members), batch_size)]
            for j, b in enumerate(batches):
                yield Task(shard=k, seq=j, last=j == len(batches) - 1, records=[prep.read(fh, i) for i in b])


def make_engine(engine: str, stages: list, pipe: Pipeline, workers: int, ray_address: Optional[str] = None):
    if engine == "local":
        from voxbox.build.engine.local import LocalEngine

        return LocalEngine(stages, pipe.audio_format, workers=workers)
    if engine == "ray":
        from voxbox.build.engine.ray import RayEngine

        return RayEngine(stages, pipe.audio_format, workers=workers, address=ray_address)
    raise VoxboxError(f"unknown engine {engine!r} (use local or ray)")


def check_out_dir(out_dir: Union[str, Path], force: bool = False) -> None:
    """Refuse a foreign --out before any slow work (a corpus download) starts."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise VoxboxError(f"{out}: exists and is not a folder; choose another --out")
    if out.is_dir():
        _check_foreign(out, force)


def build(source: Iterable[Result], out_dir: Union[str, Path], pipeline: Optional[Pipeline] = None, *,
          engine: str = "local", workers: int = 1, force: bool = False, ray_address: Optional[str] = None,
          command: Optional[Sequence[str]] = None, log: Optional[Log] = None) -> dict:
    """Build (or resume) a dataset folder from ``source`` records; return its index.

    ``source`` yields :class:`Utterance` and :class:`Rejection` values (a recipe's
    ``prepare`` output, or :func:`manifest_source`). ``pipeline`` defaults to the
    shipped VoxBox pipeline. Rerun with the same arguments to resume after a crash.
    """
    from voxbox.build.engine.common import fault_point
    from voxbox.progress import Progress

    log = log or (lambda msg: None)
    pipe = pipeline or load_pipeline()
    if engine not in ("local", "ray"):
        raise VoxboxError(f"unknown engine {engine!r} (use local or ray)")
    if workers < 1:
        raise VoxboxError(f"workers must be at least 1, got {workers}")
    check_out_dir(out_dir, force)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / (".write-test" + ix.PARTIAL_SUFFIX)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ix.io_error(out, e) from None
    for stage, why in pipe.skipped():
        log(f"stage {stage} skipped: {why}")
    stages = make_stages(pipe)  # fail early on unknown stages, before any work
    for stage in stages:
        stage.check()  # e.g. a model folder with missing or truncated files
    _check_foreign(out, force)

    work = out / WORK_DIR
    prep = prepare_input(source, work, pipe.audio_format, log)
    if not prep.keys:
        # An empty dataset is never the goal: say why nothing is usable instead of building one.
        reasons: Dict[str, int] = {}
        for r in read_rejects(prep.rejects_path):
            reasons[r.reason] = reasons.get(r.reason, 0) + 1
        shutil.rmtree(work, ignore_errors=True)
        why = (f" ({sum(reasons.values())} rejected: "
               + ", ".join(f"{n} {r}" for r, n in sorted(reasons.items(), key=lambda x: -x[1])) + ")"
               if reasons else "")
        raise VoxboxError(f"the input has no usable records{why}: nothing to build "
                          "(check --manifest, or --corpus, --root and --subset)")
    fingerprint = {"input": prep.fingerprint, "pipeline": pipe.fingerprint()}
    _check_existing(out, fingerprint, force, log)
    journal = ix.Journal(out / ix.JOURNAL_NAME)
    if journal.start() is None:
        journal.append({"kind": "start", "fingerprint": fingerprint, "name": pipe.name})
    for p in ix.remove_partials(out):
        log(f"removed unfinished {p.relative_to(out)}")

    plan = plan_shards(((i, k[2], k[3]) for i, k in prep.keys.items()), pipe.shard_mb, pipe.shard_records)
    done: Dict[int, dict] = {}
    for k, entry in sorted(journal.shards().items()):
        if k >= len(plan):
            continue
        problem = ix.verify_shard_entry(out, entry)
        if problem is None and entry.get("records", 0) + len(entry.get("rejects", [])) == len(plan[k]):
            done[k] = entry
        else:
            log(f"shard {k}: {problem or 'record count differs from the plan'}; redoing it")
    todo = [k for k in range(len(plan)) if k not in done]
    if done:
        log(f"resuming: {len(done)} of {len(plan)} shard(s) already finished and verified")

    eng = make_engine(engine, stages, pipe, workers, ray_address)
    t_run = time.monotonic()
    bars: Dict[str, Progress] = {}
    shard_bar = Progress("shards", total=len(plan), unit="shard")
    shard_bar.update(len(done))
    committer: Optional[ShardCommitter] = None

    def stage_progress(stats: Dict[str, list]) -> None:
        for name, (n_in, _n_out, secs, _cpu) in stats.items():
            if name not in bars:
                bars[name] = Progress(name, start=t_run)
            bars[name].update(n_in, secs)

    def record(entry: dict) -> None:
        fault_point("before_journal")
        journal.append(entry)
        done[entry["shard"]] = entry
        shard_bar.update(1)
        fault_point("shard_commit")

    tasks = _tasks(prep, plan, todo, pipe.batch_size)
    try:
        if getattr(eng, "writes_shards", False):
            # The engine writes and commits whole shards itself (Ray); we journal them.
            for entry in eng.run_shards(tasks, out, pipe.name, pipe.formats):
                stage_progress(entry.pop("stats", {}))
                record(entry)
        else:
            for res in eng.run(tasks):
                stage_progress(res.stats)
                if committer is None:
                    committer = ShardCommitter(out, pipe.name, res.task.shard, pipe.formats)
                for o in res.outcomes:
                    committer.add(o)
                    fault_point("shard_write")
                if res.task.last:
                    entry = committer.commit()
                    committer = None
                    record(entry)
    except BaseException:
        if committer is not None:
            committer.abort()
        raise
    finally:
        for b in bars.values():
            b.close()
        shard_bar.close()

    entries = [done[k] for k in range(len(plan))]
    index = finish(out, name=pipe.name, formats=pipe.formats, audio_format=pipe.audio_format,
                   shard_entries=entries, rejects=read_rejects(prep.rejects_path), fingerprint=fingerprint,
                   pipeline_yaml=pipe.to_yaml(), command=command,
                   sources=[{"corpus": c, "root": r} for c, r in sorted(prep.roots)])
    shutil.rmtree(work, ignore_errors=True)
    return index


def manifest_source(path: Union[str, Path]) -> Iterator[Result]:
    """Records of a prepared manifest plus the rejects file beside it, as a build source."""
    from voxbox.manifest import read_manifest, rejects_path

    yield from read_manifest(path)
    yield from read_rejects(rejects_path(path))


def default_download_dir(corpus: str) -> Path:
    """Where corpora are downloaded when no --root is given: $VOXBOX_DATA/<corpus>,
    else ~/.cache/voxbox/corpora/<corpus>."""
    base = os.environ.get("VOXBOX_DATA")
    root = Path(base) if base else Path.home() / ".cache" / "voxbox" / "corpora"
    return root / corpus


def corpus_source(corpus: str, subsets: Optional[Sequence[str]] = None, root: Optional[Union[str, Path]] = None,
                  download_dir: Optional[Union[str, Path]] = None, mirror: Optional[str] = None,
                  log: Optional[Log] = None, options: Optional[Dict[str, Any]] = None) -> Iterator[Result]:
    """A corpus recipe's prepare output as a build source; downloads first (resumable,
    checksummed) when no local ``root`` is given and the corpus does not ship with voxbox.
    ``options`` are the recipe's own (``voxbox corpora NAME`` lists them).

    The download and the root check run now, not when the source is first iterated:
    a failed download must stop ``voxbox build`` before it touches the output folder.
    """
    from voxbox.sources.corpora import default_root, get_recipe

    log = log or (lambda msg: None)
    recipe = get_recipe(corpus, **(options or {}))
    subsets = list(subsets) if subsets else None
    if root is None and default_root(corpus) is not None:
        root = default_root(corpus)  # shipped inside voxbox (the sample corpus), or lhotse's working folder
    elif root is None:
        from voxbox.sources.catalog import get_entry
        from voxbox.sources.download import download_corpus

        dest = Path(download_dir) if download_dir else default_download_dir(recipe.name)
        log(f"no --root given: downloading {corpus}{' ' + ','.join(subsets) if subsets else ''} into {dest}")
        download_corpus(get_entry(corpus), dest, subsets, mirror=mirror, log=log)
        root = dest
    elif not Path(root).exists():
        raise VoxboxError(f"{root}: corpus root not found")
    return recipe.prepare(root, subsets)


def lhotse_manifests(paths: Sequence[Union[str, Path]]) -> Optional[Dict[str, str]]:
    """Recipe options when ``paths`` are lhotse manifests (a CutSet, or recordings +
    supervisions), None when they are voxbox manifests; a mix is an error."""
    from voxbox.sources.corpora.lhotse import manifest_kind

    kinds = {str(p): manifest_kind(p) for p in paths}
    if not any(kinds.values()):
        return None
    if not all(kinds.values()):
        raise VoxboxError("--manifest: give voxbox manifests or lhotse manifests, not both")
    by_kind = {k: p for p, k in kinds.items()}
    if len(by_kind) != len(paths) or set(by_kind) not in ({"cuts"}, {"recordings", "supervisions"}):
        raise VoxboxError("--manifest with lhotse: one CutSet (cuts.jsonl.gz), or one recordings and one "
                          "supervisions manifest")
    return by_kind
