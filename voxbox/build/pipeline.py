"""The pipeline model: which stages run, with which options, and how the output is cut.

A pipeline file (``pipelines/voxbox.yaml`` is the default) names stages in order with
their ``params``, an ``output`` block and an ``engine`` block. :func:`load_pipeline`
reads it, applies command-line overrides and checks everything against what is
declared (stage options, output and engine settings) before any input is read.
"""

from __future__ import annotations

import copy
import difflib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from voxbox.errors import VoxboxError
from voxbox.shards import index as ix
from voxbox.shards.writer import DEFAULT_SHARD_MB, DEFAULT_SHARD_RECORDS, check_formats

DEFAULT_PIPELINE = "voxbox"
DEFAULT_BATCH_SIZE = 16
# The keys a pipeline file may hold, per block (anything else is a typo to report).
_TOP_KEYS = ("name", "stages", "output", "engine")
_STAGE_KEYS = ("stage", "params", "requires", "resources")
# What a stage may ask a cluster engine (Ray) for: per actor CPUs and GPUs (fractions
# allowed: num_gpus 0.25 puts four actors on a GPU) and the pool size. Where a stage
# runs never changes its output, so these are not part of the pipeline's identity.
_RESOURCE_KEYS = ("num_cpus", "num_gpus", "actors")
_OUTPUT_KEYS = ("formats", "audio_format", "shard_mb", "shard_records")
_ENGINE_KEYS = ("batch_size",)


@dataclass
class Pipeline:
    """A resolved pipeline: stages in order with parameters, output settings."""

    name: str
    stages: List[dict]                  # {"stage", "params": dict, "requires": str|None, "resources": dict}
    formats: Tuple[str, ...] = ("webdataset", "parquet")
    audio_format: str = "flac"
    shard_mb: float = DEFAULT_SHARD_MB
    shard_records: int = DEFAULT_SHARD_RECORDS
    batch_size: int = DEFAULT_BATCH_SIZE

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
            if s.get("resources"):
                d["resources"] = s["resources"]
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
    ``stage_params`` merges ``{stage: {param: value}}``. Every stage's params are then
    checked against its declared options.
    """
    path = pipeline_file(path)
    raw = _read_yaml(path)
    entries = _select(_stage_entries(path, raw.get("stages") or []), stages, path)
    _apply_overrides(entries, model_dir, device, stage_params)
    check_stage_params(entries, path)
    out, eng = raw.get("output") or {}, raw.get("engine") or {}
    return _resolve(path, name or raw.get("name"), entries, out, eng, formats=formats,
                    audio_format=audio_format, shard_mb=shard_mb, shard_records=shard_records,
                    batch_size=batch_size)


def _unknown_keys(where: str, given, allowed: Sequence[str]) -> None:
    for key in given:
        if key not in allowed:
            near = difflib.get_close_matches(str(key), list(allowed), n=1)
            hint = f"did you mean '{near[0]}'?" if near else f"known: {', '.join(allowed)}"
            raise VoxboxError(f"{where}: unknown key '{key}' ({hint})")


def _read_yaml(path: Path) -> dict:
    import yaml

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise VoxboxError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("stages", []), list):
        raise VoxboxError(f"{path}: a pipeline is a mapping with a 'stages' list")
    _unknown_keys(str(path), raw, _TOP_KEYS)
    for block, allowed in (("output", _OUTPUT_KEYS), ("engine", _ENGINE_KEYS)):
        if not isinstance(raw.get(block) or {}, dict):
            raise VoxboxError(f"{path}: '{block}' must be a mapping")
        _unknown_keys(f"{path}: {block}", raw.get(block) or {}, allowed)
    return raw


def _stage_entries(path: Path, raw_stages: list) -> List[dict]:
    entries = []
    for i, s in enumerate(raw_stages):
        if isinstance(s, str):
            s = {"stage": s}
        if not isinstance(s, dict) or not s.get("stage"):
            raise VoxboxError(f"{path}: stage #{i + 1} needs a 'stage' name")
        _unknown_keys(f"{path}: stage {s['stage']}", s, _STAGE_KEYS)
        if not isinstance(s.get("params") or {}, dict):
            raise VoxboxError(f"{path}: stage {s['stage']}: 'params' must be a mapping")
        entries.append({"stage": str(s["stage"]), "params": copy.deepcopy(s.get("params") or {}),
                        "requires": s.get("requires"),
                        "resources": _check_resources(f"{path}: stage {s['stage']}", s.get("resources"))})
    return entries


def _check_resources(where: str, res) -> dict:
    """A stage's ``resources`` block: known keys, finite non-negative numbers, whole actors."""
    if res is None:
        return {}
    if not isinstance(res, dict):
        raise VoxboxError(f"{where}: 'resources' must be a mapping ({', '.join(_RESOURCE_KEYS)})")
    _unknown_keys(f"{where}: resources", res, _RESOURCE_KEYS)
    for key, value in res.items():
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not number or value < 0 or (key == "actors" and (value < 1 or int(value) != value)):
            kind = "a whole number of at least 1" if key == "actors" else "a finite number >= 0"
            raise VoxboxError(f"{where}: resources '{key}' must be {kind}, got {value!r}")
    return dict(res)


def _select(entries: List[dict], stages: Optional[Sequence[str]], path: Path) -> List[dict]:
    if stages is None:
        return entries
    known = {e["stage"] for e in entries}
    missing = [s for s in stages if s not in known]
    if missing:
        raise VoxboxError(f"stage(s) {', '.join(missing)} not in pipeline {path.name} "
                          f"(it has: {', '.join(e['stage'] for e in entries)})")
    return [e for e in entries if e["stage"] in stages]


def _apply_overrides(entries: List[dict], model_dir, device, stage_params) -> None:
    for e in entries:
        if model_dir is not None and "model_dir" in e["params"]:
            e["params"]["model_dir"] = str(Path(model_dir).resolve())
        if device is not None and "device" in e["params"]:
            e["params"]["device"] = device
        for k, v in ((stage_params or {}).get(e["stage"]) or {}).items():
            e["params"][k] = v


def check_stage_params(entries: Sequence[dict], where: Union[str, Path] = "pipeline") -> None:
    """Each stage exists and its params (and ``requires``) name declared options of the
    right type; run before any input is read. Skipped stages are checked too: a typo
    there is still a typo."""
    from voxbox.stages import check_params, stage_class

    for e in entries:
        cls = stage_class(e["stage"])
        check_params(e["stage"], cls.options, e["params"])
        req = e.get("requires")
        if req is not None and req not in {o.name for o in cls.options}:
            raise VoxboxError(f"{where}: stage {e['stage']} requires '{req}', which is not one of its options")


def _resolve(path: Path, name, entries: List[dict], out: dict, eng: dict, **cli) -> Pipeline:
    def pick(key, block, default):
        return cli[key] if cli[key] is not None else block.get(key, default)

    audio_format = str(cli["audio_format"] or out.get("audio_format") or "flac")
    try:
        pipe = Pipeline(
            name=str(name or DEFAULT_PIPELINE), stages=entries,
            formats=check_formats(cli["formats"] or out.get("formats") or ("webdataset", "parquet"), audio_format),
            audio_format=audio_format,
            shard_mb=float(pick("shard_mb", out, DEFAULT_SHARD_MB)),
            shard_records=int(pick("shard_records", out, DEFAULT_SHARD_RECORDS)),
            batch_size=int(pick("batch_size", eng, DEFAULT_BATCH_SIZE)))
    except (TypeError, ValueError) as e:
        raise VoxboxError(f"{path}: bad output/engine setting ({e})") from None
    if "." in pipe.name or "/" in pipe.name or not pipe.name:
        raise VoxboxError(f"dataset name {pipe.name!r} may not be empty or contain dots or slashes")
    if not math.isfinite(pipe.shard_mb) or pipe.shard_mb <= 0:
        raise VoxboxError(f"shard_mb must be a positive number of megabytes, got {pipe.shard_mb:g}")
    if pipe.shard_records <= 0 or pipe.batch_size <= 0:
        raise VoxboxError("shard_records and batch_size must be positive")
    return pipe


def make_stages(pipe: Pipeline) -> list:
    """Stage objects for the active stages: a registered name, or ``"module:Class"``
    for a user's own stage that is not registered."""
    from voxbox.stages import stage_class

    stages = []
    for s in pipe.active_stages():
        st = stage_class(s["stage"])(**(s.get("params") or {}))
        if s.get("resources"):
            st.resources = {**st.resources, **s["resources"]}  # the pipeline file's word wins
        stages.append(st)
    return stages
