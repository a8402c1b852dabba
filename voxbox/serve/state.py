"""What one running ``voxbox serve`` holds: the dataset, its table and shard store, the
corrections log, the statistics (computed once, in the background), the models and the
latest synthesis results."""

from __future__ import annotations

import getpass
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from voxbox.errors import VoxboxError

SYNTH_KEEP = 32  # synthesis results kept for playback


@dataclass
class Settings:
    dataset_dir: Path
    model_dir: Optional[Path] = None
    device: str = "cpu"
    host: str = "127.0.0.1"
    port: int = 7860
    auth_token: Optional[str] = None
    table_dir: Optional[Path] = None  # None: a temporary folder, removed at exit
    corrections: Optional[Path] = None  # None: DATASET/corrections.jsonl
    max_new_tokens: int = 3000


class CorrectionsLog:
    """The corrections file, mirrored in memory (re-read when another writer changed it)."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._items: List[dict] = []
        self._seen: Tuple[int, int] = (-1, -1)
        self._reload()

    def _stamp(self) -> Tuple[int, int]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return (0, 0)
        return (st.st_size, st.st_mtime_ns)

    def _reload(self) -> None:
        from voxbox.build.corrections import read_corrections

        stamp = self._stamp()
        if stamp != self._seen:
            self._items = list(read_corrections(self.path)) if stamp != (0, 0) else []
            self._seen = stamp

    def for_record(self, index: str) -> List[dict]:
        with self._lock:
            self._reload()
            return [c for c in self._items if c["index"] == index]

    def latest(self, index: str) -> Dict[str, dict]:
        return {c["field"]: c for c in self.for_record(index)}

    def add(self, correction: dict) -> None:
        from voxbox.build.corrections import append_correction

        with self._lock:
            self._reload()
            try:
                append_correction(self.path, correction)
            except OSError as e:
                raise VoxboxError(f"{self.path}: cannot write the correction ({e.strerror}); start voxbox serve "
                                  "with --corrections FILE in a writable place") from None
            self._items.append(correction)
            self._seen = self._stamp()

    @property
    def count(self) -> int:
        with self._lock:
            self._reload()
            return len(self._items)


class StatsJob:
    """``collect_stats`` once, in a background thread started by the first overview request."""

    def __init__(self, ds):
        self.ds = ds
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self.result = None
        self.error: Optional[str] = None
        self.started = 0.0

    def get(self):
        """(stats or None while computing, error or None)."""
        with self._lock:
            if self._thread is None:
                self.started = time.monotonic()
                self._thread = threading.Thread(target=self._run, name="voxbox-serve-stats", daemon=True)
                self._thread.start()
        return self.result, self.error

    def _run(self) -> None:
        from voxbox.dataset.stats import collect_stats

        try:
            self.result = collect_stats(self.ds, progress=False)
        except VoxboxError as e:
            self.error = str(e)
        except Exception as e:  # noqa: BLE001 - shown on the page instead of a hung spinner
            self.error = f"{type(e).__name__}: {e}"


class SynthResults:
    """The last few synthesised clips, by a random id the page plays them from."""

    def __init__(self, keep: int = SYNTH_KEEP):
        self.keep = keep
        self._items: "OrderedDict[str, bytes]" = OrderedDict()
        self._lock = threading.Lock()

    def put(self, wav: bytes) -> str:
        key = secrets.token_hex(8)
        with self._lock:
            self._items[key] = wav
            while len(self._items) > self.keep:
                self._items.popitem(last=False)
        return key

    def get(self, key: str) -> Optional[bytes]:
        with self._lock:
            return self._items.get(key)


class ServeState:
    def __init__(self, settings: Settings, log=None):
        from voxbox.build.corrections import CORRECTIONS_NAME
        from voxbox.dataset.reader import open_dataset
        from voxbox.serve.models import Models
        from voxbox.serve.store import ShardStore
        from voxbox.serve.table import RecordTable

        self.settings = settings
        self.ds = open_dataset(settings.dataset_dir)
        self.models = Models(settings.model_dir, settings.device, settings.max_new_tokens)
        self.models.check()
        self.store = ShardStore(self.ds)
        self.table = RecordTable(self.ds, settings.table_dir, log=log)
        self.corrections = CorrectionsLog(settings.corrections or self.ds.path / CORRECTIONS_NAME)
        self.stats = StatsJob(self.ds)
        self.synth = SynthResults()
        self.pipeline = self.ds.pipeline
        self.default_who = _user()
        self.corpus_roots = corpus_roots(self.ds)

    def close(self) -> None:
        self.table.close()


def corpus_roots(ds) -> Dict[str, List[str]]:
    """corpus -> the folders the build read it from (``provenance.json`` ``sources``:
    the records themselves do not carry local paths)."""
    roots: Dict[str, List[str]] = {}
    for src in ds.provenance.get("sources") or []:
        if isinstance(src, dict) and src.get("root"):
            roots.setdefault(str(src.get("corpus") or ""), []).append(str(src["root"]))
    return roots


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
