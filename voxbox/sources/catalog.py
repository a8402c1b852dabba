"""The corpus catalog: one YAML file per corpus in ``manifests/`` (installed as
``voxbox.manifests``).

An entry says what a corpus is (languages, license, homepage, sample rate, which
labels the corpus itself provides) and where its public archives are, per subset,
with the size and checksum where the publisher (or a well-known verifier) states
one. ``checksum: none`` is written out explicitly so that "we do not know" is never
confused with "we forgot".

Archive URLs can be redirected to a mirror (``--mirror`` or ``VOXBOX_MIRROR``): the
mirror replaces the scheme and host and keeps the path, which is how the OpenSLR
mirrors (``openslr.elda.org``, ``openslr.trmal.net``, ...) are organised.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple
from urllib.parse import urlsplit, urlunsplit

from voxbox.errors import VoxboxError

MIRROR_ENV = "VOXBOX_MIRROR"
CATALOG_ENV = "VOXBOX_CATALOG"  # an extra folder of YAML entries (user corpora, tests)
CHECKSUM_ALGOS = ("md5", "sha1", "sha256")


def catalog_dirs() -> List[Path]:
    from voxbox.manifests import HERE

    dirs = [Path(HERE)]
    extra = os.environ.get(CATALOG_ENV)
    if extra:
        dirs.extend(Path(p) for p in extra.split(os.pathsep) if p)
    return dirs


@dataclass(frozen=True)
class Archive:
    subset: str
    url: str
    size: Optional[str] = None          # as the publisher lists it, e.g. "1.2G"
    size_bytes: Optional[int] = None    # exact, when known
    checksum: Optional[str] = None      # "md5:<hex>" / "sha256:<hex>"; None = publisher states none
    checksum_source: Optional[str] = None

    @property
    def filename(self) -> str:
        name = Path(urlsplit(self.url).path).name
        if not name:
            raise VoxboxError(f"archive URL has no file name: {self.url}")
        return name

    def resolved_url(self, mirror: Optional[str] = None) -> str:
        return apply_mirror(self.url, mirror)


@dataclass(frozen=True)
class CorpusEntry:
    name: str
    title: str
    languages: Tuple[str, ...]
    license: str
    homepage: str
    sample_rate: Optional[int]
    audio_format: str
    native_labels: Dict[str, str]
    archives: Tuple[Archive, ...] = ()
    voxbox_subset: Optional[str] = None
    download_notes: Optional[str] = None
    layout: Optional[str] = None
    notes: Optional[str] = None
    source_file: Optional[str] = None
    voxbox_hours: Optional[float] = None  # the corpus's hours in VoxBox (README tables)
    access: str = "open"                  # open | gated (click-through) | restricted (licence/registration)

    @property
    def subsets(self) -> List[str]:
        seen: List[str] = []
        for a in self.archives:
            if a.subset not in seen:
                seen.append(a.subset)
        return seen

    def archives_for(self, subsets: Optional[List[str]] = None) -> List[Archive]:
        if not self.archives:
            raise VoxboxError(
                f"{self.name} has no public archive to download"
                + (f": {self.download_notes}" if self.download_notes else "")
            )
        if not subsets:
            return list(self.archives)
        unknown = [s for s in subsets if s not in self.subsets]
        if unknown:
            raise VoxboxError(
                f"{self.name}: unknown subset {', '.join(unknown)} (known: {', '.join(self.subsets)})"
            )
        return [a for a in self.archives if a.subset in subsets]


def parse_checksum(text: str) -> Tuple[str, str]:
    algo, sep, digest = str(text).partition(":")
    algo = algo.strip().lower()
    digest = digest.strip().lower()
    if not sep or algo not in CHECKSUM_ALGOS or not digest or any(c not in "0123456789abcdef" for c in digest):
        raise VoxboxError(f"bad checksum {text!r}: write it as md5:<hex> or sha256:<hex>")
    return algo, digest


def apply_mirror(url: str, mirror: Optional[str] = None) -> str:
    """Swap scheme and host for the mirror's, keep the path (mirror paths are prefixed)."""
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV) or None
    if not mirror:
        return url
    m = urlsplit(mirror)
    if not m.scheme or not m.netloc:
        raise VoxboxError(f"mirror must be a base URL like https://host[/prefix], got {mirror!r}")
    u = urlsplit(url)
    path = m.path.rstrip("/") + u.path
    return urlunsplit((m.scheme, m.netloc, path, u.query, ""))


def _entry_from_yaml(data: dict, source: Path) -> CorpusEntry:
    def need(key):
        if key not in data:
            raise VoxboxError(f"{source}: catalog entry lacks '{key}'")
        return data[key]

    archives = []
    for i, a in enumerate(data.get("archives") or []):
        for key in ("subset", "url", "checksum"):
            if key not in a:
                raise VoxboxError(f"{source}: archive {i} lacks '{key}' (write 'checksum: none' when none is published)")
        checksum = a["checksum"]
        if checksum in (None, "none", "None"):
            checksum = None
        else:
            parse_checksum(checksum)
        archives.append(Archive(
            subset=str(a["subset"]), url=str(a["url"]), size=(str(a["size"]) if a.get("size") else None),
            size_bytes=a.get("size_bytes"), checksum=checksum, checksum_source=a.get("checksum_source"),
        ))
    langs = need("languages")
    return CorpusEntry(
        name=str(need("name")), title=str(data.get("title") or data["name"]),
        languages=tuple(langs if isinstance(langs, list) else [langs]),
        license=str(need("license")), homepage=str(need("homepage")),
        sample_rate=data.get("sample_rate"), audio_format=str(data.get("audio_format") or "?"),
        native_labels={str(k): str(v) for k, v in (data.get("native_labels") or {}).items()},
        archives=tuple(archives), voxbox_subset=data.get("voxbox_subset"),
        download_notes=data.get("download_notes"), layout=data.get("layout"), notes=data.get("notes"),
        source_file=str(source), voxbox_hours=data.get("voxbox_hours"),
        access=_access(data.get("access"), source),
    )


ACCESS = ("open", "gated", "restricted")


def _access(value, source: Path) -> str:
    value = str(value or "open")
    if value not in ACCESS:
        raise VoxboxError(f"{source}: access must be one of {', '.join(ACCESS)}, got {value!r}")
    return value


def load_catalog() -> Dict[str, CorpusEntry]:
    """All entries, by name (later catalog folders override earlier ones)."""
    import yaml

    out: Dict[str, CorpusEntry] = {}
    for d in catalog_dirs():
        if not d.is_dir():
            continue
        for path in sorted(d.glob("*.yaml")):
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except yaml.YAMLError as e:
                raise VoxboxError(f"{path}: not valid YAML ({e})") from None
            if not isinstance(data, dict):
                raise VoxboxError(f"{path}: a catalog entry must be a mapping")
            entry = _entry_from_yaml(data, path)
            out[entry.name] = entry
    return out


def normalise_name(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def get_entry(name: str) -> CorpusEntry:
    cat = load_catalog()
    key = normalise_name(name)
    if key not in cat:
        raise VoxboxError(f"unknown corpus '{name}' (known: {', '.join(sorted(cat))})")
    return cat[key]
