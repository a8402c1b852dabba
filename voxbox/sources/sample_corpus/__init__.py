"""The sample corpus shipped inside voxbox: six LibriTTS test-clean utterances.

``voxbox build --corpus sample --out out/sample`` builds it offline, in seconds (recipe
:mod:`voxbox.sources.corpora.sample`). The audio is LibriTTS's own, stored losslessly as
FLAC; the license and attribution are in ``LICENSE.txt`` next to this file.
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE  # the corpus root: LibriTTS/test-clean/<speaker>/<chapter>/<id>.flac
