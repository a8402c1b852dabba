"""LibriTTS-R (openslr 141): the LibriTTS layout under LibriTTS_R/, restored audio."""

from __future__ import annotations

from voxbox.sources.corpora.libritts import LibriTTS


class LibriTTSR(LibriTTS):
    name = "libritts_r"
    top_dirs = ("LibriTTS_R",)
    # lhotse's recipe skips this file: it does not decode (known-corrupt in the release).
    known_bad = ("1092_134562_000013_000004.wav",)
