"""The Stage interface and the stage registry.

A stage is a pure per-record function: it takes an :class:`Utterance` and returns the
enriched record or a :class:`Rejection`. Everything else (reading, ordering, batching
across workers, parallelism, resume, writing) belongs to the engines and writers, so
the same stage runs in a loop, a process pool or on Ray unchanged.

Models are loaded in :meth:`Stage.setup`, which each worker calls once; nothing is
held in module-level globals, and a stage object is cheap to construct and pickle.

A stage declares its options (:class:`StageOption`: name, type, default, help), the way
recipes declare theirs. Unknown or ill-typed options are refused when the stage is
made and when a pipeline file is loaded, before any input is read; ``voxbox stages``
lists them.
"""

from __future__ import annotations

import difflib
import importlib
import math
import os
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple, Type

from voxbox.errors import VoxboxError
from voxbox.record import Rejection, Result, Utterance

_TYPE_NAMES = {str: "text", int: "integer", float: "number", bool: "true/false", Path: "path", list: "list"}
_TYPE_PHRASES = {str: "text", int: "an integer", float: "a finite number", bool: "true or false", Path: "a path",
                 list: "a list"}


@dataclass(frozen=True)
class StageOption:
    """One declared stage option. ``type`` is str, int, float, bool or Path (a file or
    folder, given as text); ``None`` is accepted when the default is ``None`` or
    ``nullable`` is set."""

    name: str
    type: type
    default: Any
    help: str
    choices: Tuple[Any, ...] = ()
    minimum: Optional[float] = None
    label: Optional[str] = None  # what a value is, for errors: "unknown <label> 'x' (choose from ...)"
    nullable: bool = False

    @property
    def type_name(self) -> str:
        return _TYPE_NAMES[self.type]

    def check(self, stage: str, value: Any) -> Any:
        """``value`` as the stage stores it (paths as text); VoxboxError when ill-typed."""
        if value is None and (self.default is None or self.nullable):
            return None
        if not self._type_ok(value):
            raise VoxboxError(f"stage {stage}: option '{self.name}' must be {_TYPE_PHRASES[self.type]}, "
                              f"got {value!r}")
        if self.choices and value not in self.choices:
            choose = ", ".join(map(str, self.choices))
            if self.label:
                raise VoxboxError(f"unknown {self.label} {value!r} (choose from {choose})")
            raise VoxboxError(f"stage {stage}: option '{self.name}' must be one of {choose}, got {value!r}")
        if self.minimum is not None and value < self.minimum:
            raise VoxboxError(f"stage {stage}: option '{self.name}' must be at least {self.minimum:g}, got {value!r}")
        return os.fspath(value) if self.type is Path else value

    def _type_ok(self, value: Any) -> bool:
        if self.type is bool:
            return isinstance(value, bool)
        if self.type is int:
            return isinstance(value, int) and not isinstance(value, bool)
        if self.type is float:
            return (isinstance(value, (int, float)) and not isinstance(value, bool)
                    and math.isfinite(value))
        if self.type is Path:
            return isinstance(value, (str, os.PathLike)) and bool(os.fspath(value))
        return isinstance(value, self.type)


def check_params(stage: str, options: Sequence[StageOption], params: Mapping[str, Any]) -> Dict[str, Any]:
    """Every declared option with its value (given, else the default), checked.

    An unknown name is refused with the closest declared one:
    ``stage tokenize has no option 'devcie' (did you mean 'device'?)``.
    """
    declared = {o.name: o for o in options}
    for key in params:
        if key not in declared:
            near = difflib.get_close_matches(str(key), list(declared), n=1)
            hint = (f"did you mean '{near[0]}'?" if near
                    else f"options: {', '.join(declared)}" if declared else "it takes no options")
            raise VoxboxError(f"stage {stage} has no option '{key}' ({hint})")
    return {name: opt.check(stage, params[name]) if name in params else opt.default
            for name, opt in declared.items()}


class Stage:
    #: Name used in pipeline files and in rejects (``stage`` column).
    name: ClassVar[str] = "stage"
    #: True when the stage gains from seeing many records at once (e.g. the tokenizer).
    batched: ClassVar[bool] = False
    #: Resources per worker the engines should reserve, e.g. {"num_gpus": 1}.
    resources: ClassVar[Dict[str, float]] = {}
    #: The options a pipeline file (``params:``) or the constructor may set.
    options: ClassVar[Tuple[StageOption, ...]] = ()

    def __init__(self, **params: Any):
        # Every declared option, checked, defaults filled in: the stage reads self.params.
        self.params = check_params(self.name, self.options, params)
        self._ready = False

    # -- lifecycle ------------------------------------------------------------------
    def setup(self) -> None:
        """Load models and other heavy state. Called once per worker before use."""

    def check(self) -> None:
        """Cheap checks of the parameters (files exist, headers parse), run once by the
        driver before any work so a bad option fails at once rather than inside a worker.
        Loads no model. Raise VoxboxError on a problem."""

    def ensure_setup(self) -> None:
        if not self._ready:
            self.setup()
            self._ready = True

    def __getstate__(self) -> dict:
        # Ship only the parameters to workers; each worker loads its own models.
        return {"params": self.params}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state["params"])

    # -- work -----------------------------------------------------------------------
    def process(self, rec: Utterance) -> Result:
        raise NotImplementedError

    def process_batch(self, recs: Sequence[Utterance]) -> List[Result]:
        return [self.process(r) for r in recs]

    # -- helpers for engines ----------------------------------------------------------
    def reject(self, rec: Utterance, reason: str, detail: str | None = None) -> Rejection:
        path = rec.source_path or rec.wav_path or ""
        return Rejection(stage=self.name, path=path, reason=reason, index=rec.index, detail=detail)

    def safe_process_batch(self, recs: Sequence[Utterance]) -> List[Result]:
        """Run the stage so that no exception escapes: unexpected errors become rejections.

        A batch that fails as a whole is retried record by record so one bad record
        cannot take its neighbours down with it.
        """
        self.ensure_setup()
        try:
            out = self.process_batch(recs)
            if len(out) != len(recs):
                raise RuntimeError(f"stage {self.name} returned {len(out)} results for {len(recs)} records")
            return out
        except Exception:
            if len(recs) == 1:
                return [self._unexpected(recs[0])]
        results: List[Result] = []
        for r in recs:
            try:
                results.append(self.process(r))
            except Exception:
                results.append(self._unexpected(r))
        return results

    def _unexpected(self, rec: Utterance) -> Rejection:
        tb = traceback.format_exc(limit=3)
        last = tb.strip().splitlines()[-1] if tb.strip() else "unknown error"
        return self.reject(rec, "unexpected_error", last)


_REGISTRY: Dict[str, str] = {
    # name -> "module:Class"; modules are imported only when the stage is used, so
    # `voxbox --help` stays fast and optional extras stay optional.
    "annotate": "voxbox.annotate.stage:AnnotateStage",
    "tokenize": "voxbox.tokenize.stage:TokenizeStage",
    "dnsmos": "voxbox.annotate.dnsmos:DNSMOSStage",
    "filter": "voxbox.filtering:FilterStage",
}


def register_stage(name: str, target: str) -> None:
    """Register a stage class by import path, e.g. ``register_stage("x", "pkg.mod:Cls")``."""
    _REGISTRY[name] = target


def stage_names() -> List[str]:
    return sorted(_REGISTRY)


def stage_class(name: str) -> Type[Stage]:
    """The class of a registered stage, or of ``"module:Class"`` (a user's own stage)."""
    if ":" in name:
        return _import_stage(name, name)
    try:
        target = _REGISTRY[name]
    except KeyError:
        near = difflib.get_close_matches(name, stage_names(), n=1)
        hint = f"did you mean '{near[0]}'?" if near else f"known: {', '.join(stage_names())}"
        raise VoxboxError(f"unknown stage '{name}' ({hint})") from None
    return _import_stage(name, target)


def _import_stage(name: str, target: str) -> Type[Stage]:
    module, _, cls_name = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module), cls_name)
    except (ImportError, AttributeError) as e:
        raise VoxboxError(f"stage {name}: cannot import it ({e})") from None
    if not (isinstance(cls, type) and issubclass(cls, Stage)):
        raise VoxboxError(f"stage {name}: not a voxbox.stages.Stage subclass")
    return cls


def make_stage(name: str, **params: Any) -> Stage:
    return stage_class(name)(**params)
