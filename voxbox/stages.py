"""The Stage interface and the stage registry.

A stage is a pure per-record function: it takes an :class:`Utterance` and returns the
enriched record or a :class:`Rejection`. Everything else (reading, ordering, batching
across workers, parallelism, resume, writing) belongs to the engines and writers, so
the same stage runs in a loop, a process pool or on Ray unchanged.

Models are loaded in :meth:`Stage.setup`, which each worker calls once; nothing is
held in module-level globals, and a stage object is cheap to construct and pickle.
"""

from __future__ import annotations

import importlib
import traceback
from typing import Any, ClassVar, Dict, List, Sequence, Type

from voxbox.errors import VoxboxError
from voxbox.record import Rejection, Result, Utterance


class Stage:
    #: Name used in pipeline files and in rejects (``stage`` column).
    name: ClassVar[str] = "stage"
    #: True when the stage gains from seeing many records at once (e.g. the tokenizer).
    batched: ClassVar[bool] = False
    #: Resources per worker the engines should reserve, e.g. {"num_gpus": 1}.
    resources: ClassVar[Dict[str, float]] = {}

    def __init__(self, **params: Any):
        self.params = params
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

    def describe(self) -> dict:
        """What identifies this stage's output: used to detect a changed pipeline."""
        return {"stage": self.name, "params": self.params}


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
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise VoxboxError(f"unknown stage '{name}' (known: {', '.join(stage_names())})") from None
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def make_stage(name: str, **params: Any) -> Stage:
    return stage_class(name)(**params)
