"""The sample corpus that ships inside voxbox (:mod:`voxbox.sources.sample_corpus`):
six LibriTTS test-clean utterances as FLAC, in LibriTTS's layout. Needs no --root and
no download, so ``voxbox build --corpus sample --out out/sample`` works on any machine."""

from __future__ import annotations

from pathlib import Path

from voxbox.sources.corpora.libritts import LibriTTS


class Sample(LibriTTS):
    """Six LibriTTS test-clean utterances shipped inside voxbox (CC BY 4.0); no download."""

    name = "sample"
    audio_ext = ".flac"
    subset_help = "test-clean (the only one)"

    @staticmethod
    def default_root() -> Path:
        """Where the corpus sits inside the installed package (used when no --root is given)."""
        from voxbox.sources.sample_corpus import ROOT

        return ROOT
