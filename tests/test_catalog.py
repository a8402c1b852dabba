"""The corpus catalog (manifests/*.yaml) and the `voxbox corpora` command."""

from __future__ import annotations

import pytest

from voxbox.sources.catalog import get_entry, load_catalog, parse_checksum
from voxbox.cli import main
from voxbox.sources.corpora import recipe_class, recipe_names
from voxbox.errors import VoxboxError
from voxbox.record import EMOTIONS

CORPORA = {"libritts", "libritts_r", "vctk", "aishell3", "librispeech", "ljspeech", "hifitts",
           "mls_english", "esd", "cremad", "ravdess", "emovdb",
           # the rest of VoxBox's sources and the release itself (issue 13)
           "voxbox", "m3ed", "casia", "emns", "jl_corpus", "mead", "meld", "savee", "tess", "iemocap",
           "msp_podcast", "mer2023", "ncssd", "magicdata", "dailytalk", "expresso", "emilia", "wenetspeech4tts",
           "gigaspeech", "hq_conversations",
           "sample"}  # the sample corpus shipped inside voxbox (issue 14)
# Catalogued VoxBox sources whose recipe is not written yet: none left.
NO_RECIPE_YET: set = set()


def test_every_corpus_has_an_entry_and_a_recipe():
    cat = load_catalog()
    assert set(cat) == CORPORA | NO_RECIPE_YET
    assert set(recipe_names()) == CORPORA | {"folder", "lhotse"}  # recipes without a corpus of their own
    for name, e in cat.items():
        if name in NO_RECIPE_YET:
            assert "RECIPE NOT DONE" in e.notes
        else:
            assert recipe_class(name).name == name
        assert e.languages and e.license and e.homepage.startswith("https://")
        assert {"gender", "text"} <= set(e.native_labels), name
        for a in e.archives:
            assert a.url.startswith("https://") and a.filename
            if a.checksum:
                algo, digest = parse_checksum(a.checksum)
                assert len(digest) == {"md5": 32, "sha256": 64}[algo]
        if not e.archives:
            assert e.download_notes, f"{name}: a corpus without archives must say how to get it"


def test_known_publisher_checksums_are_recorded():
    libri = get_entry("librispeech")
    dev = [a for a in libri.archives if a.subset == "dev-clean"][0]
    assert dev.checksum == "md5:42e2234ba48799c1f50f24a7926300a1" and dev.size_bytes == 337926286
    assert get_entry("LibriTTS-R").archives[0].checksum is None  # explicit "none", not forgotten
    assert get_entry("vctk").archives[0].checksum.startswith("sha256:")


def test_catalog_errors_are_clear(tmp_path, monkeypatch):
    (tmp_path / "bad.yaml").write_text("name: bad\nlanguages: [en]\nlicense: x\nhomepage: h\n"
                                       "archives:\n  - {subset: a, url: https://x/a.tgz}\n")
    monkeypatch.setenv("VOXBOX_CATALOG", str(tmp_path))
    with pytest.raises(VoxboxError, match="lacks 'checksum'.*checksum: none"):
        load_catalog()
    monkeypatch.delenv("VOXBOX_CATALOG")
    with pytest.raises(VoxboxError, match="unknown corpus 'nosuch'"):
        get_entry("nosuch")
    with pytest.raises(VoxboxError, match="bad checksum"):
        parse_checksum("crc:123")
    with pytest.raises(VoxboxError, match="no public archive"):
        get_entry("esd").archives_for(None)


def test_cli_corpora_table_and_entry(capsys):
    assert main(["corpora"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["name", "languages", "license", "access"]
    n = len(CORPORA | NO_RECIPE_YET)
    assert {l.split()[0] for l in lines[1:n + 1]} == CORPORA | NO_RECIPE_YET
    emilia = next(l for l in lines if l.startswith("emilia "))
    assert " gated " in emilia and "55,057.43" in emilia
    assert "folder" in out
    assert main(["corpora", "libritts"]) == 0
    one = capsys.readouterr().out
    assert "https://www.openslr.org/resources/60/dev-clean.tar.gz" in one and "sha256:" in one
    assert "text (default 'normalized')" in one
    assert main(["corpora", "folder"]) == 0
    assert "text_column (default 'text')" in capsys.readouterr().out
    assert main(["corpora", "gigaspeech"]) == 0
    giga = capsys.readouterr().out
    assert "access:      gated" in giga and "recipe:      none yet" not in giga and "7,195.85 h" in giga
    assert main(["corpora", "nosuch"]) == 1


def test_emotion_words_map_into_the_25_classes():
    from voxbox.sources.corpora.base import EMOTION_WORDS, map_emotion, map_gender

    assert set(EMOTION_WORDS.values()) <= set(EMOTIONS)
    assert map_emotion("Surprise") == "SURPRISED" and map_emotion("no-agreement") == "NO-AGREEMENT"
    assert map_emotion("bewildered") is None
    assert (map_gender("F"), map_gender(" Male "), map_gender("x")) == ("female", "male", None)
