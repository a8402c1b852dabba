"""Where a build's records come from: a prepared manifest, a corpus recipe or lhotse manifests.

Both yield :class:`~voxbox.record.Utterance` and :class:`~voxbox.record.Rejection`
values; the build streams them into its prepared input.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional, Sequence, Union

from voxbox.errors import VoxboxError
from voxbox.record import Result


def manifest_source(path: Union[str, Path], allow_absolute_paths: bool = False) -> Iterator[Result]:
    """Records of a prepared manifest plus the rejects file beside it, as a build source.
    A malformed record is a rejection naming its line and field, and so is one whose
    source_path leaves its corpus_root, unless ``allow_absolute_paths``."""
    from voxbox.manifest import read_rejects, read_results, rejects_path

    yield from read_results(path, allow_outside_root=allow_absolute_paths)
    yield from read_rejects(rejects_path(path))


def default_download_dir(corpus: str) -> Path:
    """Where corpora are downloaded when no --root is given: $VOXBOX_DATA/<corpus>,
    else ~/.cache/voxbox/corpora/<corpus>."""
    base = os.environ.get("VOXBOX_DATA")
    root = Path(base) if base else Path.home() / ".cache" / "voxbox" / "corpora"
    return root / corpus


def corpus_source(corpus: str, subsets: Optional[Sequence[str]] = None, root: Optional[Union[str, Path]] = None,
                  download_dir: Optional[Union[str, Path]] = None, mirror: Optional[str] = None,
                  log: Optional[Callable[[str], None]] = None,
                  options: Optional[Dict[str, Any]] = None,
                  ignore: Sequence[Union[str, Path]] = ()) -> Iterator[Result]:
    """A corpus recipe's prepare output as a build source; downloads first (resumable,
    checksummed) when no local ``root`` is given and the corpus does not ship with voxbox.
    ``options`` are the recipe's own (``voxbox corpora NAME`` lists them). ``ignore``:
    paths the scan leaves out, with everything inside them (the build's own output
    folder, should it sit inside the root: its files are no corpus files).

    The download and the root check run now, not when the source is first iterated:
    a failed download must stop ``voxbox build`` before it touches the output folder.
    """
    from voxbox import storage
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
    elif not storage.root_path(root).exists():
        where = storage.root_path(root)
        raise VoxboxError(f"corpus root {where.not_found()}" if storage.is_remote(where)
                          else f"{root}: corpus root not found")
    from voxbox.lock import lock_path

    skip = tuple(ignore) + tuple(lock_path(p) for p in ignore)
    return recipe.prepare(root, subsets, ignore=skip)


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
