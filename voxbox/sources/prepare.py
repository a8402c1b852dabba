"""Recipe -> manifest + rejects file, streamed, with a progress bar and a summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Union

from voxbox.errors import VoxboxError
from voxbox.lock import OutputLock, lock_path
from voxbox.record import Utterance, audio_seconds, format_reason_counts
from voxbox.manifest import ManifestWriter, RejectsWriter, rejects_path
from voxbox.sources.corpora import get_recipe


@dataclass
class PrepareSummary:
    corpus: str
    manifest: Path
    rejects: Path
    records: int = 0
    rejected: int = 0
    audio_seconds: float = 0.0
    by_reason: Dict[str, int] = field(default_factory=dict)
    skipped: Dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        hours = self.audio_seconds / 3600.0
        text = f"{self.corpus}: {self.records} records ({hours:.2f} h) -> {self.manifest}; "
        if self.rejected:
            text += f"{self.rejected} rejected ({format_reason_counts(self.by_reason)}) -> {self.rejects}"
        else:
            text += "0 rejected"
        if self.skipped:
            text += "; skipped by option: " + format_reason_counts(self.skipped)
        return text


def prepare_manifest(corpus: str, root: Union[str, Path], out: Union[str, Path],
                     subsets: Optional[List[str]] = None, options: Optional[dict] = None,
                     workers: int = 4, log: Callable[[str], None] = lambda s: None) -> PrepareSummary:
    """Run a recipe over a local copy and write ``out`` plus ``<stem>.rejects.jsonl``
    beside it (``m.jsonl.gz`` -> ``m.rejects.jsonl``, see :func:`voxbox.manifest.rejects_path`)."""
    from voxbox.progress import Progress

    recipe = get_recipe(corpus, **(options or {}))
    out = Path(out)
    summary = PrepareSummary(recipe.name, out, rejects_path(out))
    with OutputLock(out, log), ManifestWriter(out) as writer, RejectsWriter(summary.rejects) as rejects, \
            Progress(f"prepare {recipe.name}", unit="file") as bar:
        ignore = (out, writer.tmp, summary.rejects, lock_path(out))
        for res in recipe.prepare(root, subsets, workers=workers, ignore=ignore):
            if isinstance(res, Utterance):
                writer.write(res)
                secs = audio_seconds(res)
                summary.records += 1
                summary.audio_seconds += secs
                bar.update(1, audio_seconds=secs)
            else:
                rejects.write(res)
                summary.rejected += 1
                summary.by_reason[res.reason] = summary.by_reason.get(res.reason, 0) + 1
                bar.update(1)
        if not summary.records:
            # An empty manifest is never what was wanted (wrong --root, corpus or subset, or
            # every file unusable); raising here also keeps it from being written.
            raise VoxboxError(f"{recipe.name}: no usable recordings under {root}" + (
                f" ({summary.rejected} rejected: {format_reason_counts(summary.by_reason)}"
                f"; reasons per file in {summary.rejects})" if summary.rejected else "")
                + ("; a clip needs a sidecar .txt or a -o metadata=FILE row (`voxbox corpora folder`)"
                   if recipe.name == "folder" else
                   f"; is --root a copy of {recipe.name}? (`voxbox corpora {recipe.name}` shows the layout)"))
    summary.skipped = dict(recipe.skipped)
    return summary
