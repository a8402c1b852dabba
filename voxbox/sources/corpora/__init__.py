"""Corpus recipes: a registry of name -> recipe class, imported lazily.

Each recipe lives in its own module (``voxbox/sources/corpora/<name>.py``) and subclasses
:class:`voxbox.sources.corpora.base.Recipe`. Third-party code adds its own with
:func:`register_recipe`. Use :func:`get_recipe` to build one and
:func:`voxbox.sources.prepare.prepare_manifest` to write a manifest.
"""

from __future__ import annotations

import importlib
from typing import Dict, List

from voxbox.errors import VoxboxError

_REGISTRY: Dict[str, str] = {
    "libritts": "voxbox.sources.corpora.libritts:LibriTTS",
    "libritts_r": "voxbox.sources.corpora.libritts_r:LibriTTSR",
    "vctk": "voxbox.sources.corpora.vctk:VCTK",
    "aishell3": "voxbox.sources.corpora.aishell3:AISHELL3",
    "librispeech": "voxbox.sources.corpora.librispeech:LibriSpeech",
    "ljspeech": "voxbox.sources.corpora.ljspeech:LJSpeech",
    "hifitts": "voxbox.sources.corpora.hifitts:HiFiTTS",
    "mls_english": "voxbox.sources.corpora.mls_english:MLSEnglish",
    "esd": "voxbox.sources.corpora.esd:ESD",
    "cremad": "voxbox.sources.corpora.cremad:CremaD",
    "ravdess": "voxbox.sources.corpora.ravdess:RAVDESS",
    "emovdb": "voxbox.sources.corpora.emovdb:EmoVDB",
    "folder": "voxbox.sources.corpora.folder:Folder",
    "sample": "voxbox.sources.corpora.sample:Sample",
    "lhotse": "voxbox.sources.corpora.lhotse:Lhotse",
    # The rest of VoxBox's 29 sources (issue 13).
    "voxbox": "voxbox.sources.corpora.voxbox:VoxBoxRelease",
    "m3ed": "voxbox.sources.corpora.m3ed:M3ED",
    "casia": "voxbox.sources.corpora.casia:CASIA",
    "emns": "voxbox.sources.corpora.emns:EMNS",
    "jl_corpus": "voxbox.sources.corpora.jl_corpus:JLCorpus",
    "mead": "voxbox.sources.corpora.mead:MEAD",
    "meld": "voxbox.sources.corpora.meld:MELD",
    "savee": "voxbox.sources.corpora.savee:SAVEE",
    "tess": "voxbox.sources.corpora.tess:TESS",
    "iemocap": "voxbox.sources.corpora.iemocap:IEMOCAP",
    "msp_podcast": "voxbox.sources.corpora.msp_podcast:MSPPodcast",
    "mer2023": "voxbox.sources.corpora.mer2023:MER2023",
    "ncssd": "voxbox.sources.corpora.ncssd:NCSSD",
    "magicdata": "voxbox.sources.corpora.magicdata:MagicData",
    "dailytalk": "voxbox.sources.corpora.dailytalk:DailyTalk",
    "expresso": "voxbox.sources.corpora.expresso:Expresso",
    "emilia": "voxbox.sources.corpora.emilia:Emilia",
    "wenetspeech4tts": "voxbox.sources.corpora.wenetspeech4tts:WenetSpeech4TTS",
    "gigaspeech": "voxbox.sources.corpora.gigaspeech:GigaSpeech",
    "hq_conversations": "voxbox.sources.corpora.hq_conversations:HQConversations",
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


def default_root(name: str):
    """Where a recipe reads from when no --root is given: the folder it ships its corpus
    in (the sample corpus), the working folder (lhotse manifests), or None (then the
    corpus must be given or downloaded)."""
    root = getattr(recipe_class(name), "default_root", None)
    return root() if root is not None else None
