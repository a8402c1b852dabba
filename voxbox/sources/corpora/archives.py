"""Archives inside a corpus tree (the VoxBox release's ``.tar.gz`` shards, Emilia's
WebDataset tars, WenetSpeech4TTS's tier tarballs): extracted once, safely, into
``<root>/.voxbox/extracted/<archive path>/`` and reused while the archive is unchanged.

Interim: issue 13 asks for members read in place (byte ranges of uncompressed tars,
one sequential pass per ``.tar.gz``); until that lands, the extracted copy is what the
stages read. Extraction goes through :func:`voxbox.sources.download.safe_extract`
(members checked, nothing written outside the folder); a damaged or unsafe archive
becomes one ``bad_archive`` rejection and the other archives carry on. A marker file
with the archive's size and mtime says an extraction finished, so a killed run
re-extracts instead of reading half a folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Union

from voxbox.errors import VoxboxError
from voxbox.record import Rejection
from voxbox.sources.corpora.base import reject

CACHE = ".voxbox/extracted"
MARKER = ".voxbox-complete"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")


def is_archive(name: str) -> bool:
    return name.endswith(ARCHIVE_SUFFIXES)


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size} {st.st_mtime_ns}"


def extracted(base: Path, archive_rel: str, corpus: str) -> Union[str, Rejection]:
    """The folder (relative to ``base``) holding ``archive_rel``'s members, extracting it
    first when needed; a ``bad_archive`` rejection when it cannot be read."""
    from voxbox.sources.download import safe_extract

    dest_rel = f"{CACHE}/{archive_rel}"
    dest, src = base / dest_rel, base / archive_rel
    marker = dest / MARKER
    if marker.is_file() and marker.read_text(encoding="utf-8") == _stamp(src):
        return dest_rel
    tmp = dest.with_name(dest.name + ".partial")
    try:
        for d in (dest, tmp):
            if d.exists():
                shutil.rmtree(d)
        tmp.mkdir(parents=True)
        safe_extract(src, tmp)
        (tmp / MARKER).write_text(_stamp(src), encoding="utf-8")
        os.replace(tmp, dest)
    except VoxboxError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        return reject(archive_rel, "bad_archive", str(e), corpus)
    except OSError as e:
        raise VoxboxError(f"{corpus}: cannot extract {archive_rel} into {dest.parent} "
                          f"({e.strerror or e}); the corpus folder must be writable") from None
    return dest_rel
