"""Every recipe on a small tree in its corpus's real layout (tiny synthetic audio, real
file names, real metadata formats), plus LibriTTS on the real libritts-mini tree."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxbox.sources.corpora import get_recipe, recipe_names
from voxbox.sources.prepare import prepare_manifest
from voxbox.record import EMOTIONS, Rejection, Utterance, make_index
from voxbox.manifest import read_manifest


def tone(path: Path, sr: int = 16000, seconds: float = 0.05, fmt: str | None = None, seed: int = 0) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = int(sr * seconds)
    x = 0.1 * np.sin(np.arange(n) * (2 * np.pi * (200 + seed) / sr)).astype("float32")
    sf.write(str(path), x, sr, format=fmt, subtype="PCM_16")
    return n


def write(path: Path, text: str, encoding: str = "utf-8") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))


def run(name, root, subsets=None, **options):
    out = list(get_recipe(name, **options).prepare(root, subsets, workers=2))
    recs = {r.source_path: r for r in out if isinstance(r, Utterance)}
    rejs = {r.path: r for r in out if isinstance(r, Rejection)}
    return recs, rejs


def expected_utt_id(name: str, r) -> str:
    """The corpus's own id: the file name, except where the corpus names utterances otherwise."""
    stem = Path(r.source_path).name.rsplit(".", 1)[0]
    if name == "vctk":
        return stem.replace("_mic1", "").replace("_mic2", "")  # VCTK's id names the sentence
    if name == "emovdb":
        return f"{r.speaker}_{stem}"  # the same file names repeat in every speaker's folder
    return stem


def check_common(recs, name, root):
    for path, r in recs.items():
        assert r.utt_id == expected_utt_id(name, r), (path, r.utt_id)
        assert r.index == make_index(name, path)
        assert r.corpus == name and r.corpus_root == str(Path(root).resolve())
        assert (Path(r.corpus_root) / r.source_path).is_file()
        assert r.num_samples > 0 and r.sample_rate > 0 and r.channels == 1
        assert r.duration is None  # left for the annotator
        assert r.emotion is None or r.emotion in EMOTIONS
        assert r.gender in (None, "female", "male")


# ---------------------------------------------------------------------------- LibriTTS

def test_libritts_real_mini_tree(shared):
    root = shared / "data" / "real-speech" / "libritts-mini"
    recs, rejs = run("libritts", root)
    assert not rejs
    assert len(recs) == 6
    check_common(recs, "libritts", root)
    speakers_tsv = (root / "LibriTTS" / "speakers.tsv").read_text().splitlines()[1:]
    want_gender = {row.split("\t")[0]: {"F": "female", "M": "male"}[row.split("\t")[1]] for row in speakers_tsv}
    assert sorted(r.utt_id for r in recs.values())[0] == "260_123440_000010_000004"
    for path, r in recs.items():
        wav = root / path
        assert r.speaker == wav.parent.parent.name
        assert r.gender == want_gender[r.speaker] and r.gender_source == "native"
        sidecar = wav.with_name(wav.name[:-4] + ".normalized.txt").read_text(encoding="utf-8").strip()
        assert r.text == sidecar
        assert r.num_samples == sf.info(str(wav)).frames and r.sample_rate == 24000
        assert r.split == "test" and r.language == "en" and r.license == "CC-BY-4.0"
        assert r.emotion == "UNKNOWN" and r.emotion_source == "native"
    by_spk = {r.speaker: r for r in recs.values()}
    assert by_spk["5142"].text == "Ten sons sat at meat with him, and I was the youngest."
    assert sorted(s for s, r in by_spk.items() if r.gender == "female") == ["5142", "6829", "8463"]


def make_libritts(root: Path, top="LibriTTS"):
    base = root / top
    write(base / "speakers.tsv", "READER\tGENDER\tSUBSET\tNAME\n84\tF\tdev-clean\tChristie Nowak\n174\tM\tdev-clean\n")
    write(base / "SPEAKERS.txt", ";ID  |SEX| SUBSET |MINUTES| NAME\n84 | F | dev-clean | 25 | C N\n")
    ch = base / "dev-clean" / "84" / "121123"
    for i, (orig, norm) in enumerate([("Go, Mr. Smith!", "Go, Mister Smith!"), ("It's 5.", "It's five.")]):
        utt = f"84_121123_00000{i}_000001"
        tone(ch / f"{utt}.wav", 24000, seed=i)
        write(ch / f"{utt}.normalized.txt", norm)
        write(ch / f"{utt}.original.txt", orig)
    write(ch / "84_121123.trans.tsv", "84_121123_000000_000001\tGo, Mr. Smith!\tGo, Mister Smith!\n"
                                      "84_121123_000001_000001\tIt's 5.\tIt's five.\n"
                                      "84_121123_000002_000001\tOnly in tsv.\tOnly in t s v.\n")
    write(ch / "84_121123.book.tsv", "84_121123_000000_000001\tx\t20.5\n")
    # utterance whose only transcript is the trans.tsv row
    tone(ch / "84_121123_000002_000001.wav", 24000, seed=3)
    ch2 = base / "dev-clean" / "174" / "50561"
    tone(ch2 / "174_50561_000001_000000.wav", 24000, seed=4)
    write(ch2 / "174_50561_000001_000000.normalized.txt", "Hello there.")
    tone(base / "test-clean" / "84" / "9" / "84_9_000001_000000.wav", 24000)
    write(base / "test-clean" / "84" / "9" / "84_9_000001_000000.normalized.txt", "Test subset.")
    return base


def test_libritts_layout_subsets_and_text_option(tmp_path):
    make_libritts(tmp_path)
    recs, rejs = run("libritts", tmp_path, ["dev-clean"])
    assert not rejs and len(recs) == 4
    check_common(recs, "libritts", tmp_path)
    texts = {Path(p).name: r.text for p, r in recs.items()}
    assert texts["84_121123_000000_000001.wav"] == "Go, Mister Smith!"
    assert texts["84_121123_000002_000001.wav"] == "Only in t s v."
    genders = {r.speaker: r.gender for r in recs.values()}
    assert genders == {"84": "female", "174": "male"}
    assert all(r.split == "dev" for r in recs.values())
    # root = the corpus folder itself; original text exists only where .original.txt or trans.tsv has it
    recs, rejs = run("libritts", tmp_path / "LibriTTS", None, text="original")
    assert {r.text for r in recs.values()} == {"Go, Mr. Smith!", "It's 5.", "Only in tsv."}
    assert sorted(Path(p).name for p in recs) == sorted(["84_121123_000000_000001.wav", "84_121123_000001_000001.wav",
                                                         "84_121123_000002_000001.wav"])
    assert sorted((Path(p).name, r.reason) for p, r in rejs.items()) == [
        ("174_50561_000001_000000.wav", "missing_transcript"), ("84_9_000001_000000.wav", "missing_transcript")]


def test_libritts_r_layout_and_known_bad_file(tmp_path):
    base = make_libritts(tmp_path, "LibriTTS_R")
    bad = base / "dev-clean" / "1092" / "134562"
    tone(bad / "1092_134562_000013_000004.wav", 24000)
    write(bad / "1092_134562_000013_000004.normalized.txt", "Broken.")
    write(base / "dev-clean" / "84" / "121123" / "._84_121123_000000_000001.wav", "mac junk")
    recs, rejs = run("libritts_r", tmp_path, ["dev-clean"])
    assert len(recs) == 4 and all(r.corpus == "libritts_r" for r in recs.values())
    check_common(recs, "libritts_r", tmp_path)
    reasons = {Path(p).name: r.reason for p, r in rejs.items()}
    assert reasons == {"1092_134562_000013_000004.wav": "known_bad_file",
                       "._84_121123_000000_000001.wav": "unexplained_file"}


# ------------------------------------------------------------------------- LibriSpeech

def test_librispeech(tmp_path, shared):
    base = tmp_path / "LibriSpeech"
    meta = shared / "data" / "real-speech" / "meta" / "librispeech"
    write(base / "SPEAKERS.TXT", (meta / "SPEAKERS.TXT").read_text())
    ch = base / "test-clean" / "1089" / "134686"
    write(ch / "1089-134686.trans.txt", (meta / "1089-134686.trans.txt").read_text())
    for i in range(2):
        tone(ch / f"1089-134686-000{i}.flac", 16000, fmt="FLAC", seed=i)
    tone(ch / "1089-134686-0099.flac", 16000, fmt="FLAC")  # not in trans.txt
    recs, rejs = run("librispeech", tmp_path)
    check_common(recs, "librispeech", tmp_path)
    assert len(recs) == 2
    r0 = recs["LibriSpeech/test-clean/1089/134686/1089-134686-0001.flac"]
    assert r0.text == "STUFF IT INTO YOU HIS BELLY COUNSELLED HIM"
    assert r0.speaker == "1089" and r0.gender == "male" and r0.split == "test"  # 1089 is M in SPEAKERS.TXT
    assert [r.reason for r in rejs.values()] == ["missing_transcript"]


# -------------------------------------------------------------------------------- VCTK

def test_vctk_092(tmp_path, shared):
    base = tmp_path / "VCTK-Corpus-0.92"
    write(base / "speaker-info.txt", (shared / "data" / "real-speech" / "meta" / "vctk" / "speaker-info.txt").read_text())
    for spk in ("p225", "p226"):
        for num in ("001", "002"):
            for mic in ("mic1", "mic2"):
                tone(base / "wav48_silence_trimmed" / spk / f"{spk}_{num}_{mic}.flac", 48000, fmt="FLAC")
            write(base / "txt" / spk / f"{spk}_{num}.txt", f"Please call Stella {spk} {num}.\n")
    tone(base / "wav48_silence_trimmed" / "p315" / "p315_001_mic1.flac", 48000, fmt="FLAC")  # p315 has no text
    recs, rejs = run("vctk", tmp_path)
    check_common(recs, "vctk", tmp_path)
    assert len(recs) == 4 and all(r.extra["mic"] == "mic1" for r in recs.values())
    r = recs["VCTK-Corpus-0.92/wav48_silence_trimmed/p225/p225_001_mic1.flac"]
    assert (r.speaker, r.gender, r.age, r.text) == ("p225", "female", "Youth-Adult", "Please call Stella p225 001.")
    assert r.age_source == "native" and r.extra["accent"] == "English"
    assert recs["VCTK-Corpus-0.92/wav48_silence_trimmed/p226/p226_002_mic1.flac"].gender == "male"
    assert [x.reason for x in rejs.values()] == ["missing_transcript"]
    s = prepare_manifest("vctk", tmp_path, tmp_path / "vctk.jsonl")
    assert s.skipped == {"other_microphone": 4}
    assert "skipped by option: 4 other_microphone" in s.line() and "1 rejected" in s.line()
    recipe = get_recipe("vctk", mic="both")
    out = [x for x in recipe.prepare(tmp_path) if isinstance(x, Utterance)]
    assert len(out) == 8 and recipe.skipped == {}


# --------------------------------------------------------------------------- AISHELL-3

def test_aishell3(tmp_path):
    base = tmp_path / "data_aishell3"
    write(base / "spk-info.txt", "# Speaker info\n# age group: A: < 14, B: 14 - 25, C: 26 - 40, D: > 41\n"
                                 "SSB0005\tC\tfemale\tnorth\nSSB0009\tD\tmale\tsouth\n")
    write(base / "train" / "content.txt", "SSB00050001.wav\t广 guang3 州 zhou1 女 nv3 大 da4 学 xue2 生 sheng1\n"
                                          "SSB00090002.wav\t你 ni3 好 hao3\n")
    write(base / "train" / "label_train-set.txt", "# label\nSSB00050001|guang3 zhou1|广州\n")
    write(base / "test" / "content.txt", "SSB00050100.wav\t再 zai4 见 jian4\n")
    tone(base / "train" / "wav" / "SSB0005" / "SSB00050001.wav", 44100)
    tone(base / "train" / "wav" / "SSB0009" / "SSB00090002.wav", 44100, seed=1)
    tone(base / "test" / "wav" / "SSB0005" / "SSB00050100.wav", 44100, seed=2)
    write(base / "train" / "wav" / "SSB0005" / "notes.txt", "stray")
    recs, rejs = run("aishell3", tmp_path)
    check_common(recs, "aishell3", tmp_path)
    r = recs["data_aishell3/train/wav/SSB0005/SSB00050001.wav"]
    assert (r.text, r.gender, r.age, r.language, r.split) == ("广州女大学生", "female", "Youth-Adult", "zh", "train")
    assert recs["data_aishell3/train/wav/SSB0009/SSB00090002.wav"].age == "Middle-aged"
    assert recs["data_aishell3/test/wav/SSB0005/SSB00050100.wav"].split == "test"
    assert [(Path(p).name, x.reason) for p, x in rejs.items()] == [("notes.txt", "unexplained_file")]


# ---------------------------------------------------------------------------- LJSpeech

def test_ljspeech(tmp_path, shared):
    base = tmp_path / "LJSpeech-1.1"
    lines = (shared / "data" / "real-speech" / "meta" / "ljspeech" / "metadata.csv").read_text().splitlines()[:3]
    write(base / "metadata.csv", "\n".join(lines) + "\n")
    write(base / "README", "LJ Speech")
    for line in lines:
        tone(base / "wavs" / f"{line.split('|')[0]}.wav", 22050)
    tone(base / "wavs" / "LJ050-0001.wav", 22050)
    recs, rejs = run("ljspeech", tmp_path)
    check_common(recs, "ljspeech", tmp_path)
    assert len(recs) == 3
    assert recs["LJSpeech-1.1/wavs/LJ001-0002.wav"].text == "in being comparatively modern."
    assert {(r.speaker, r.gender) for r in recs.values()} == {("LJ", "female")}
    assert [x.reason for x in rejs.values()] == ["missing_transcript"]


# ---------------------------------------------------------------------------- Hi-Fi TTS

def test_hifitts(tmp_path):
    base = tmp_path / "hi_fi_tts_v0"
    rows = {"92_manifest_clean_train.json": [("audio/92_clean/10425/a_0001.flac", "Hello one.")],
            "6097_manifest_other_dev.json": [("audio/6097_other/5678/b_0002.flac", "Hello two.")]}
    for m, items in rows.items():
        write(base / m, "".join(json.dumps({"audio_filepath": p, "text": t.lower(), "text_normalized": t,
                                            "duration": 0.05}) + "\n" for p, t in items))
        for p, _ in items:
            tone(base / p, 44100, fmt="FLAC")
    tone(base / "audio" / "92_clean" / "10425" / "unlisted.flac", 44100, fmt="FLAC")
    recs, rejs = run("hifitts", tmp_path)
    check_common(recs, "hifitts", tmp_path)
    a = recs["hi_fi_tts_v0/audio/92_clean/10425/a_0001.flac"]
    b = recs["hi_fi_tts_v0/audio/6097_other/5678/b_0002.flac"]
    assert (a.speaker, a.gender, a.split, a.text) == ("92", "female", "train", "Hello one.")
    assert (b.speaker, b.gender, b.split) == ("6097", "male", "dev")
    assert [x.reason for x in rejs.values()] == ["unexplained_file"]
    recs, _ = run("hifitts", tmp_path, ["clean"])
    assert len(recs) == 1


# ---------------------------------------------------------------------------- MLS English

def test_mls_english(tmp_path):
    base = tmp_path / "mls_english"
    write(base / "metainfo.txt", " SPEAKER   |   GENDER   | PARTITION  |  MINUTES   |  BOOK ID   | TITLE | CHAPTER\n"
                                 "   4800    |     F      |   train    |   25.1     |   10003    | T | C\n"
                                 "   5678    |     M      |    dev     |   9.9      |    222     | T | C\n")
    write(base / "train" / "transcripts.txt", "4800_10003_000000\tthe first line\n4800_10003_000001\tthe second\n")
    write(base / "train" / "segments.txt", "4800_10003_000000\thttp://x 0.0 1.0\n")
    write(base / "train" / "limited_supervision" / "1hr" / "0" / "handles.txt", "4800_10003_000000\n")
    write(base / "dev" / "transcripts.txt", "5678_222_000010\tdev text\n")
    tone(base / "train" / "audio" / "4800" / "10003" / "4800_10003_000000.flac", 16000, fmt="FLAC")
    tone(base / "train" / "audio" / "4800" / "10003" / "4800_10003_000001.flac", 16000, fmt="FLAC", seed=1)
    tone(base / "train" / "audio" / "4800" / "10003" / "4800_10003_000777.flac", 16000, fmt="FLAC", seed=2)
    tone(base / "dev" / "audio" / "5678" / "222" / "5678_222_000010.flac", 16000, fmt="FLAC")
    recs, rejs = run("mls_english", tmp_path)
    check_common(recs, "mls_english", tmp_path)
    assert len(recs) == 3
    r = recs["mls_english/train/audio/4800/10003/4800_10003_000001.flac"]
    assert (r.speaker, r.gender, r.text, r.split) == ("4800", "female", "the second", "train")
    assert recs["mls_english/dev/audio/5678/222/5678_222_000010.flac"].gender == "male"
    assert [(Path(p).name, x.reason) for p, x in rejs.items()] == [("4800_10003_000777.flac", "unexplained_file")]


# -------------------------------------------------------------------------------- ESD

def test_esd(tmp_path):
    base = tmp_path / "Emotion Speech Dataset"
    write(base / "0001" / "0001.txt", "0001_000001\t打远一看，它们的确很是美丽，\t中立\n"
                                      "0001_000351\t打远一看。\t快乐\n")
    write(base / "0011" / "0011.txt", "0011_000001\tThe nine the eggs, I keep.\tNeutral\n"
                                      "0011_001401\tThe nine the eggs.\tSurprise\n")
    tone(base / "0001" / "Neutral" / "train" / "0001_000001.wav", 16000)
    tone(base / "0001" / "Happy" / "evaluation" / "0001_000351.wav", 16000, seed=1)
    tone(base / "0011" / "Neutral" / "test" / "0011_000001.wav", 16000, seed=2)
    tone(base / "0011" / "Surprise" / "0011_001401.wav", 16000, seed=3)  # flat variant of the layout
    tone(base / "0011" / "Surprise" / "train" / "0011_009999.wav", 16000, seed=4)  # no transcript row
    recs, rejs = run("esd", tmp_path)
    check_common(recs, "esd", tmp_path)
    r = recs["Emotion Speech Dataset/0001/Happy/evaluation/0001_000351.wav"]
    assert (r.emotion, r.emotion_source, r.split, r.language, r.text) == ("HAPPY", "native", "dev", "zh", "打远一看。")
    e = recs["Emotion Speech Dataset/0011/Surprise/0011_001401.wav"]
    assert (e.emotion, e.language, e.gender, e.gender_source) == ("SURPRISED", "en", "male", "native")
    assert r.gender == "female"  # 0001 per the corpus README
    assert recs["Emotion Speech Dataset/0011/Neutral/test/0011_000001.wav"].split == "test"
    assert [x.reason for x in rejs.values()] == ["missing_transcript"]
    recs, _ = run("esd", tmp_path, ["en"])
    assert {r.speaker for r in recs.values()} == {"0011"}


# ----------------------------------------------------------------------------- CREMA-D

def test_cremad(tmp_path):
    with open(tmp_path / "VideoDemographics.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["ActorID", "Age", "Sex", "Race", "Ethnicity"])
        w.writerow(["1001", "51", "Male", "Caucasian", "Not Hispanic"])
        w.writerow(["1002", "21", "Female", "Caucasian", "Not Hispanic"])
    tone(tmp_path / "AudioWAV" / "1001_DFA_ANG_XX.wav", 16000)
    tone(tmp_path / "AudioWAV" / "1002_IEO_HAP_HI.wav", 16000, seed=1)
    tone(tmp_path / "AudioWAV" / "1002_IEO_XYZ_HI.wav", 16000, seed=2)
    recs, rejs = run("cremad", tmp_path)
    check_common(recs, "cremad", tmp_path)
    a, b = recs["AudioWAV/1001_DFA_ANG_XX.wav"], recs["AudioWAV/1002_IEO_HAP_HI.wav"]
    assert (a.emotion, a.gender, a.age, a.text) == ("ANGRY", "male", "Middle-aged", "Don't forget a jacket.")
    assert (b.emotion, b.gender, b.age, b.extra["emotion_level"]) == ("HAPPY", "female", "Youth-Adult", "high")
    assert [(Path(p).name, x.reason) for p, x in rejs.items()] == [("1002_IEO_XYZ_HI.wav", "unexplained_file")]


# ----------------------------------------------------------------------------- RAVDESS

def test_ravdess(tmp_path):
    tone(tmp_path / "Actor_01" / "03-01-05-02-01-01-01.wav", 48000)
    tone(tmp_path / "Actor_02" / "03-01-02-01-02-02-02.wav", 48000, seed=1)
    tone(tmp_path / "Actor_02" / "03-02-03-01-01-01-02.wav", 48000, seed=2)  # song
    tone(tmp_path / "Actor_02" / "03-01-03-01-01-01-05.wav", 48000, seed=3)  # actor mismatch
    recs, rejs = run("ravdess", tmp_path)
    check_common(recs, "ravdess", tmp_path)
    a = recs["Actor_01/03-01-05-02-01-01-01.wav"]
    b = recs["Actor_02/03-01-02-01-02-02-02.wav"]
    assert (a.emotion, a.gender, a.text, a.extra["emotion_intensity"]) == ("ANGRY", "male", "Kids are talking by the door.", "strong")
    assert (b.emotion, b.gender, b.extra["native_emotion"], b.text) == ("NEUTRAL", "female", "calm", "Dogs are sitting by the door.")
    assert recs["Actor_02/03-02-03-01-01-01-02.wav"].extra["vocal_channel"] == "song"
    assert [x.reason for x in rejs.values()] == ["unexplained_file"]
    recs, _ = run("ravdess", tmp_path, ["speech"])
    assert len(recs) == 2


# ----------------------------------------------------------------------------- EmoV-DB

def test_emovdb(tmp_path, shared):
    prompts = (shared / "data" / "real-speech" / "meta" / "cmuarctic.data").read_text()
    write(tmp_path / "cmuarctic.data", prompts)
    tone(tmp_path / "bea_Amused" / "amused_1-15_0001.wav", 44100)
    tone(tmp_path / "josh" / "sleepiness_1-28_0002.wav", 44100, seed=1)
    tone(tmp_path / "sam_Angry" / "anger_1-28_0003.wav", 44100, seed=2)
    tone(tmp_path / "sam_Angry" / "anger_1-28_9999.wav", 44100, seed=3)  # no such prompt
    recs, rejs = run("emovdb", tmp_path)
    check_common(recs, "emovdb", tmp_path)
    a = recs["bea_Amused/amused_1-15_0001.wav"]
    assert (a.speaker, a.gender, a.emotion, a.extra["native_emotion"]) == ("bea", "female", "HAPPY", "amused")
    assert a.text.startswith("Author of the danger trail")
    assert recs["josh/sleepiness_1-28_0002.wav"].emotion == "SLEEPY"
    assert (recs["sam_Angry/anger_1-28_0003.wav"].gender, recs["sam_Angry/anger_1-28_0003.wav"].emotion) == ("male", "ANGRY")
    assert [x.reason for x in rejs.values()] == ["missing_transcript"]


# --------------------------------------------------------------------------- registry

def test_registry_has_every_recipe_and_rejects_unknown_options():
    from voxbox.errors import VoxboxError

    assert {"libritts", "libritts_r", "vctk", "aishell3", "librispeech", "ljspeech", "hifitts", "mls_english",
            "esd", "cremad", "ravdess", "emovdb", "folder"} <= set(recipe_names())  # + issue 13's, in test_corpora_voxbox
    assert get_recipe("LibriTTS-R").name == "libritts_r"
    with pytest.raises(VoxboxError, match="unknown option"):
        get_recipe("vctk", microphone="mic1")
    with pytest.raises(VoxboxError, match="no recipe"):
        get_recipe("nosuchcorpus")


def test_prepare_manifest_writes_jsonl_and_parquet_deterministically(tmp_path):
    make_libritts(tmp_path / "c")
    a = prepare_manifest("libritts", tmp_path / "c", tmp_path / "a.jsonl")
    b = prepare_manifest("libritts", tmp_path / "c", tmp_path / "b.jsonl", workers=1)
    assert a.records == b.records == 5 and a.rejected == 0
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert prepare_manifest("libritts", tmp_path / "c", tmp_path / "m.parquet").records == 5
    assert [r.index for r in read_manifest(tmp_path / "m.parquet")] == [r.index for r in read_manifest(tmp_path / "a.jsonl")]
    assert not (tmp_path / "a.rejects.jsonl").exists() and "0 rejected" in a.line()
