"""Corpus recipes: a registry of name -> recipe class, imported lazily.

Each recipe lives in its own module (``voxbox/corpora/<name>.py``) and subclasses
:class:`voxbox.corpora.base.Recipe`. Third-party code adds its own with
:func:`register_recipe`. Use :func:`get_recipe` to build one and
:func:`voxbox.corpora.prepare.prepare_manifest` to write a manifest.
"""

from __future__ import annotations

import importlib
from typing import Dict, List

from ..errors import VoxboxError

_REGISTRY: Dict[str, str] = {
    "libritts": "voxbox.corpora.libritts:LibriTTS",
    "libritts_r": "voxbox.corpora.libritts_r:LibriTTSR",
    "vctk": "voxbox.corpora.vctk:VCTK",
    "aishell3": "voxbox.corpora.aishell3:AISHELL3",
    "librispeech": "voxbox.corpora.librispeech:LibriSpeech",
    "ljspeech": "voxbox.corpora.ljspeech:LJSpeech",
    "hifitts": "voxbox.corpora.hifitts:HiFiTTS",
    "mls_english": "voxbox.corpora.mls_english:MLSEnglish",
    "esd": "voxbox.corpora.esd:ESD",
    "cremad": "voxbox.corpora.cremad:CremaD",
    "ravdess": "voxbox.corpora.ravdess:RAVDESS",
    "emovdb": "voxbox.corpora.emovdb:EmoVDB",
    "folder": "voxbox.corpora.folder:Folder",
}


def normalise(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def register_recipe(name: str, target: str) -> None:
    """Register ``"package.module:Class"`` under ``name`` (overrides a built-in)."""
    if ":" not in target:
        raise VoxboxError(f"recipe target must look like 'module:Class', got {target!r}")
    _REGISTRY[normalise(name)] = target


def recipe_names() -> List[str]:
    return sorted(_REGISTRY)


def recipe_class(name: str):
    key = normalise(name)
    if key not in _REGISTRY:
        raise VoxboxError(f"no recipe for '{name}' (known: {', '.join(recipe_names())})")
    module, _, cls = _REGISTRY[key].partition(":")
    return getattr(importlib.import_module(module), cls)


def get_recipe(name: str, **options):
    return recipe_class(name)(**options)
