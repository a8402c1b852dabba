"""The recipes for the rest of VoxBox's 29 sources, each on a fixture in its exact
layout built at test time from the shared real clips (tests/corpus_fixtures.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpus_fixtures import Clips, tar_bytes, tar_folder, write
from voxbox import media
from voxbox.record import EMOTIONS, Rejection, Utterance
from voxbox.sources.corpora import get_recipe, recipe_names

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def catalog(monkeypatch):
    # The catalog of this checkout (the editable install may point at another one).
    monkeypatch.setenv("VOXBOX_CATALOG", str(REPO / "manifests"))


@pytest.fixture(scope="module")
def clips(shared):
    return Clips(shared)


def run(name, root, subsets=None, **options):
    recipe = get_recipe(name, **options)
    out = list(recipe.prepare(root, subsets, workers=2))
    recs = {r.source_path: r for r in out if isinstance(r, Utterance)}
    rejs = {r.path: r for r in out if isinstance(r, Rejection)}
    with media.prefetch(recs.values()):  # one pass per .tar.gz, as the build engine reads them
        for r in recs.values():
            assert r.corpus == name and r.emotion in EMOTIONS and r.num_samples > 0
            # A file, or an archive member read in place (nothing extracted).
            assert (Path(r.corpus_root) / r.source_path).is_file() or media.record_bytes(r)
            assert r.utt_id, f"{name}: {r.source_path} has no utt_id (the corpus's own id)"
    ids = [(r.split, r.utt_id) for r in recs.values()]  # MELD numbers dialogues per split
    assert len(ids) == len(set(ids)), f"{name}: utt_id is not unique within a split"
    return recs, rejs, recipe


def by_name(recs):
    return {p.rsplit("/", 1)[-1]: r for p, r in recs.items()}


def test_m3ed_on_the_voxbox_example(shared):
    root = shared / "data" / "voxbox-m3ed"
    recs, rejs, _ = run("m3ed", root)
    assert len(recs) == 653
    assert set(rejs) == set()  # LICENSE/README sit beside audios/, outside the layout
    release = {json.loads(line)["wav_path"].rsplit("/", 1)[-1]: json.loads(line)
               for line in (root / "m3ed.jsonl").read_text(encoding="utf-8").splitlines()}
    for name, r in by_name(recs).items():
        assert r.emotion == release[name]["emotion"] and r.emotion_source == "native"
        assert r.text == (" ".join(release[name]["text"].split()) or None) and r.language == "zh"


def test_casia(tmp_path, clips):
    for i, (spk, emo) in enumerate([("liuchanhg", "angry"), ("wangzhe", "surprise"), ("ZhaoZuoxiang", "fear")]):
        clips.put(tmp_path / "CASIA" / spk / emo / f"{201 + i}.wav", i)
    write(tmp_path / "CASIA" / "wangzhe" / "surprise" / "202.txt", "你好")
    clips.put(tmp_path / "CASIA" / "wangzhe" / "bored" / "203.wav", 3)
    recs, rejs, _ = run("casia", tmp_path)
    got = {r.speaker: (r.gender, r.emotion, r.text) for r in recs.values()}
    assert got == {"liuchanhg": ("female", "ANGRY", None), "wangzhe": ("male", "SURPRISED", "你好"),
                   "ZhaoZuoxiang": ("male", "FEARFUL", None)}
    assert [r.reason for r in rejs.values()] == ["unexplained_file"]
    recs, _, _ = run("casia", tmp_path, ["wangzhe"])
    assert len(recs) == 1


def test_emns_converted_and_unconverted_webm(tmp_path, clips):
    write(tmp_path / "metadata.csv", "id|utterance|emotion|gender|age|level|audio_recording\n"
          "1|Hello there.|Sarcastic|Female|23|4|raw_webm/a1.webm\n"
          "2|Second clip.|Excited|Female|23|2|raw_webm/a2.webm\n")
    write(tmp_path / "raw_webm" / "a1.webm", "not decodable")
    clips.put(tmp_path / "raw_webm" / "a1.wav", 0)
    write(tmp_path / "raw_webm" / "a2.webm", "not decodable")
    recs, rejs, _ = run("emns", tmp_path)
    (r,) = recs.values()
    assert r.source_path == "raw_webm/a1.wav" and r.text == "Hello there."
    assert (r.emotion, r.gender, r.age, r.extra["emotion_level"]) == ("SARCASTIC", "female", "Youth-Adult", "4")
    (rej,) = rejs.values()
    assert rej.path == "raw_webm/a2.webm" and rej.reason == "unsupported_audio_format" and "ffmpeg" in rej.detail


def test_jl_corpus(tmp_path, clips):
    d = tmp_path / "JL(wav+txt)"
    clips.put(d / "female1_apologetic_12a_1.wav", 0)
    write(d / "female1_apologetic_12a_1.txt", "I am so sorry.")
    clips.put(d / "male2_excited_3b_2.wav", 1)
    write(d / "male2_excited_3b_2.txt", "We won!")
    clips.put(d / "male1_angry_1a_1.wav", 2)  # no transcript
    recs, rejs, _ = run("jl_corpus", tmp_path)
    got = {r.speaker: (r.gender, r.emotion, r.text, r.extra["emotion_class"]) for r in recs.values()}
    assert got == {"female1": ("female", "APOLOGETIC", "I am so sorry.", "secondary"),
                   "male2": ("male", "EXCITED", "We won!", "primary")}
    assert [r.reason for r in rejs.values()] == ["missing_transcript"]


def test_mead(tmp_path, clips):
    clips.put(tmp_path / "M003" / "audio" / "contempt" / "level_2" / "001.wav", 0)
    write(tmp_path / "W009" / "audio" / "happy" / "level_1" / "002.m4a", "aac")
    clips.put(tmp_path / "W009" / "audio" / "happy" / "level_1" / "002.wav", 1)
    write(tmp_path / "W009" / "audio" / "happy" / "level_3" / "003.m4a", "aac")
    recs, rejs, _ = run("mead", tmp_path)
    got = {r.source_path: (r.gender, r.emotion, r.extra["emotion_level"]) for r in recs.values()}
    assert got == {"M003/audio/contempt/level_2/001.wav": ("male", "CONTEMPT", 2),
                   "W009/audio/happy/level_1/002.wav": ("female", "HAPPY", 1)}
    assert {p: r.reason for p, r in rejs.items()} == {"W009/audio/happy/level_3/003.m4a": "unsupported_audio_format"}


def test_meld(tmp_path, clips):
    write(tmp_path / "MELD.Raw" / "dev_sent_emo.csv",
          "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID\n"
          '1,"Oh, my God!",Rachel,surprise,positive,0,0\n2,Great.,Ross,joy,positive,0,1\n3,No.,Joey,anger,negative,1,0\n')
    clips.put(tmp_path / "MELD.Raw" / "dev_splits_complete" / "dia0_utt0.wav", 0)
    write(tmp_path / "MELD.Raw" / "dev_splits_complete" / "dia0_utt1.mp4", "video")
    recs, rejs, _ = run("meld", tmp_path)
    (r,) = recs.values()
    assert (r.text, r.speaker, r.emotion, r.split) == ("Oh, my God!", "Rachel", "SURPRISED", "dev")
    assert {Path(p).name: x.reason for p, x in rejs.items()} == {
        "dia0_utt1.mp4": "unsupported_audio_format", "dia1_utt0.mp4": "missing_audio"}


def test_savee_nested_and_flat(tmp_path, clips):
    clips.put(tmp_path / "AudioData" / "DC" / "sa03.wav", 0)
    clips.put(tmp_path / "AudioData" / "KL" / "n11.wav", 1)
    clips.put(tmp_path / "ALL" / "JE_su01.wav", 2)
    recs, rejs, _ = run("savee", tmp_path)
    got = {r.speaker: (r.emotion, r.gender) for r in recs.values()}
    assert got == {"DC": ("SAD", "male"), "KL": ("NEUTRAL", "male"), "JE": ("SURPRISED", "male")}
    assert not rejs


def test_tess(tmp_path, clips):
    clips.put(tmp_path / "OAF_Pleasant_surprise" / "OAF_back_ps.wav", 0)
    clips.put(tmp_path / "YAF_sad" / "YAF_youth_sad.wav", 1)
    recs, rejs, _ = run("tess", tmp_path)
    got = {r.speaker: (r.text, r.emotion, r.age, r.gender) for r in recs.values()}
    assert got == {"OAF": ("Say the word back.", "SURPRISED", "Elderly", "female"),
                   "YAF": ("Say the word youth.", "SAD", "Youth-Adult", "female")}


def test_iemocap(tmp_path, clips):
    s = tmp_path / "IEMOCAP_full_release" / "Session1"
    for i, utt in enumerate(["Ses01F_impro01_F000", "Ses01F_impro01_M001", "Ses01F_impro01_F002"]):
        clips.put(s / "sentences" / "wav" / "Ses01F_impro01" / f"{utt}.wav", i)
    write(s / "dialog" / "EmoEvaluation" / "Ses01F_impro01.txt",
          "% header\n[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]\n"
          "[10.0 - 11.0]\tSes01F_impro01_M001\txxx\t[3.0, 2.0, 1.0]\n")
    write(s / "dialog" / "transcriptions" / "Ses01F_impro01.txt",
          "Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.\nSes01F_impro01_M001 [010.0-011.0]: Yeah.\n")
    recs, rejs, _ = run("iemocap", tmp_path)
    got = {Path(p).stem: (r.gender, r.emotion, r.text, r.extra["vad"]) for p, r in recs.items()}
    assert got == {"Ses01F_impro01_F000": ("female", "NEUTRAL", "Excuse me.", [2.5, 2.5, 2.5]),
                   "Ses01F_impro01_M001": ("male", "NO-AGREEMENT", "Yeah.", [3.0, 2.0, 1.0])}
    assert [r.reason for r in rejs.values()] == ["missing_transcript"]


def test_msp_podcast(tmp_path, clips):
    write(tmp_path / "Labels" / "labels_consensus.csv",
          "FileName,EmoClass,EmoAct,EmoVal,EmoDom,SpkrID,Gender,Split_Set\n"
          "MSP-PODCAST_0001_0008.wav,X,4.2,3.0,4.4,127,Female,Train\n"
          "MSP-PODCAST_0002_0001.wav,C,3.0,2.0,5.0,12,Male,Test1\n")
    for i, n in enumerate(["MSP-PODCAST_0001_0008", "MSP-PODCAST_0002_0001"]):
        clips.put(tmp_path / "Audios" / f"{n}.wav", i)
        write(tmp_path / "Transcripts" / f"{n}.txt", f"utterance {i}")
    recs, rejs, _ = run("msp_podcast", tmp_path)
    got = {r.speaker: (r.gender, r.emotion, r.split, r.text, r.extra["arousal"]) for r in recs.values()}
    assert got == {"127": ("female", "NO-AGREEMENT", "train", "utterance 0", 4.2),
                   "12": ("male", "CONTEMPT", "test", "utterance 1", 3.0)}
    recs, _, _ = run("msp_podcast", tmp_path, ["test"])
    assert [r.speaker for r in recs.values()] == ["12"]


def test_mer2023(tmp_path, clips):
    write(tmp_path / "label-6way.csv", "name,discrete,valence\nsample_00000001,worried,-1.2\nsample_00000002,happy,2\n"
          "sample_00000003,sad,-2\n")
    write(tmp_path / "transcription.csv", "name,chinese\nsample_00000001,我很担心。\nsample_00000002,太好了\n")
    clips.put(tmp_path / "train" / "sample_00000001.wav", 0)
    write(tmp_path / "train" / "sample_00000001.avi", "video")
    write(tmp_path / "train" / "sample_00000002.avi", "video")
    recs, rejs, _ = run("mer2023", tmp_path)
    (r,) = recs.values()
    assert (r.source_path, r.emotion, r.text) == ("train/sample_00000001.wav", "WORRIED", "我很担心。")
    assert {p: x.reason for p, x in rejs.items()} == {"train/sample_00000002.avi": "unsupported_audio_format",
                                                     "sample_00000003.wav": "missing_audio"}


def test_ncssd(tmp_path, clips):
    clips.put(tmp_path / "CL-CN" / "spk01" / "u1.wav", 0)
    write(tmp_path / "CL-CN" / "spk01" / "u1.txt", "你好。")
    clips.put(tmp_path / "RC-EN" / "spk02" / "u2.wav", 1)
    write(tmp_path / "RC-EN" / "spk02" / "u2.txt", "Hello.")
    recs, rejs, _ = run("ncssd", tmp_path)
    got = {r.speaker: (r.language, r.text, r.extra["ncssd_subset"]) for r in recs.values()}
    assert got == {"spk01": ("zh", "你好。", "CL-CN"), "spk02": ("en", "Hello.", "RC-EN")} and not rejs


def test_magicdata(tmp_path, clips):
    write(tmp_path / "dev" / "TRANS.txt", "UtteranceID\tSpeakerID\tTranscription\n"
          "38_5718_20170915093244.wav\t38_5718\t今天天气很好\n")
    clips.put(tmp_path / "dev" / "38_5718" / "38_5718_20170915093244.wav", 0)
    clips.put(tmp_path / "dev" / "38_5718" / "38_5718_20170915093245.wav", 1)
    recs, rejs, _ = run("magicdata", tmp_path)
    (r,) = recs.values()
    assert (r.speaker, r.text, r.split, r.emotion) == ("38_5718", "今天天气很好", "dev", "UNKNOWN")
    assert [x.reason for x in rejs.values()] == ["missing_transcript"]


def test_dailytalk(tmp_path, clips):
    clips.put(tmp_path / "data" / "0" / "0_1_d0.wav", 0)
    write(tmp_path / "data" / "0" / "0_1_d0.txt", "Say, Jim, how about going for a few beers?")
    clips.put(tmp_path / "data" / "0" / "1_0_d0.wav", 1)
    write(tmp_path / "data" / "0" / "1_0_d0.txt", "You know that is tempting.")
    write(tmp_path / "metadata.json", json.dumps({"0": {"0": {"text": "x", "speaker": 1, "emotion": "no emotion",
                                                              "act": "directive"},
                                                        "1": {"emotion": "happiness"}}}))
    recs, rejs, _ = run("dailytalk", tmp_path)
    got = {Path(p).name: (r.speaker, r.emotion, r.extra["turn"]) for p, r in recs.items()}
    assert got == {"0_1_d0.wav": ("dailytalk_1", "NEUTRAL", 0), "1_0_d0.wav": ("dailytalk_0", "HAPPY", 1)}


def test_expresso_styles(tmp_path, clips):
    read = tmp_path / "expresso" / "audio_48khz" / "read" / "ex01"
    for i, style in enumerate(["whisper", "laughing", "enunciated", "default", "confused"]):
        clips.put(read / style / "base" / f"ex01_{style}_0000{i}.wav", i)
    clips.put(tmp_path / "expresso" / "audio_48khz" / "conversational" / "ex01-ex02" / "default" / "c_channel1.wav", 5)
    write(tmp_path / "expresso" / "read_transcriptions.txt",
          "".join(f"ex01_{s}_0000{i}\ttext {i}\n" for i, s in
                  enumerate(["whisper", "laughing", "enunciated", "default", "confused"])))
    write(tmp_path / "expresso" / "splits" / "dev.txt", "ex01_whisper_00000\n")
    recs, rejs, recipe = run("expresso", tmp_path)
    got = {r.extra["native_emotion"]: (r.emotion, r.split) for r in recs.values()}
    assert got == {"whisper": ("WHISPER", "dev"), "laughing": ("LAUGHING", "train"),
                   "enunciated": ("ENUNCIATED", "train"), "default": ("NEUTRAL", "train"),
                   "confused": ("CONFUSED", "train")}
    assert recipe.skipped == {"unsegmented_recording": 1} and not rejs


def emilia_member(clips, tmp, i, uid, lang="en"):
    mp3 = clips.put(tmp / f"{uid}.mp3", i)
    meta = {"id": uid, "wav": f"{uid}.mp3", "text": clips.text(i), "duration": 2.0, "speaker": uid[:-8],
            "language": lang, "dnsmos": 3.1 + i / 10}
    return [(f"{uid}.json", json.dumps(meta).encode()), (f"{uid}.mp3", mp3.read_bytes())]


def test_emilia_webdataset_tars_and_jsonl_layout(tmp_path, clips):
    src = tmp_path / "src"
    members = emilia_member(clips, src, 0, "EN_B00000_S00000_W000000") + \
        emilia_member(clips, src, 1, "EN_B00000_S00000_W000001")
    tar_bytes(tmp_path / "c" / "Emilia" / "EN" / "EN-B000000.tar", members)
    recs, rejs, _ = run("emilia", tmp_path / "c")
    assert not rejs and len(recs) == 2
    r = by_name(recs)["EN_B00000_S00000_W000001.mp3"]
    assert (r.text, r.language, r.extra["dnsmos"]) == (clips.text(1), "en", 3.2)
    assert r.speaker == "EN_B00000_S00000" and r.sample_rate == 16000
    assert r.utt_id == "EN_B00000_S00000_W000001"  # Emilia's own id, for joins with its metadata
    assert all(p.startswith("Emilia/EN/EN-B000000.tar/") for p in recs)
    assert not (tmp_path / "c" / ".voxbox").exists() and not (tmp_path / "c" / "Emilia" / ".voxbox").exists()
    again, _, _ = run("emilia", tmp_path / "c", extract=True)  # opt-in extraction: the same records
    assert again == recs and (tmp_path / "c" / ".voxbox" / "extracted" / "Emilia" / "EN" / "EN-B000000.tar").is_dir()
    # the first open release: <LANG>_B00000.jsonl + mp3 folders
    old = tmp_path / "old" / "ZH"
    clips.put(old / "ZH_B00000" / "ZH_B00000_S00000" / "mp3" / "ZH_B00000_S00000_W000000.mp3", 2)
    write(old / "ZH_B00000.jsonl", json.dumps({"id": "ZH_B00000_S00000_W000000", "text": "你好",
                                               "wav": "ZH_B00000/ZH_B00000_S00000/mp3/ZH_B00000_S00000_W000000.mp3",
                                               "speaker": "ZH_B00000_S00000", "language": "zh", "dnsmos": 3.3}) +
          "\n{bad json\n")
    recs, rejs, _ = run("emilia", tmp_path / "old")
    (r,) = recs.values()
    assert (r.text, r.language) == ("你好", "zh")
    assert [x.reason for x in rejs.values()] == ["bad_metadata"]


def test_emilia_damaged_tar_is_one_rejection(tmp_path, clips):
    (tmp_path / "EN").mkdir()
    (tmp_path / "EN" / "EN-B000000.tar").write_bytes(b"\x00garbage" * 100)
    tar_bytes(tmp_path / "EN" / "EN-B000001.tar", emilia_member(clips, tmp_path / "src", 0, "EN_B00001_S00000_W000000"))
    recs, rejs, _ = run("emilia", tmp_path)
    assert len(recs) == 1 and [r.reason for r in rejs.values()] == ["bad_archive"]


def test_wenetspeech4tts_folders_and_tarballs(tmp_path, clips):
    def part(folder, ids, start):
        for k, uid in enumerate(ids):
            clips.put(folder / "wavs" / f"{uid}.wav", start + k)
            write(folder / "txts" / f"{uid}.txt", f"{uid}\t文本{k}\n0.0 0.5 文\n")

    part(tmp_path / "Premium" / "WenetSpeech4TTS_Premium_0", ["X0001", "X0002"], 0)
    src = tmp_path / "src" / "WenetSpeech4TTS_Basic_3"
    part(src, ["Y0001"], 2)
    tar_folder(tmp_path / "Basic" / "WenetSpeech4TTS_Basic_3.tar.gz",
               [(f"WenetSpeech4TTS_Basic_3/{p.relative_to(src).as_posix()}", p) for p in sorted(src.rglob("*.*"))], gz=True)
    write(tmp_path / "DNSMOS_P808Scores" / "Premium_DNSMOS.lst", "X0001.wav 4.12\nX0002.wav 4.05\n")
    recs, rejs, _ = run("wenetspeech4tts", tmp_path)
    got = {Path(p).stem: (r.text, r.extra["tier"], r.extra["dnsmos_p808"]) for p, r in recs.items()}
    assert got == {"X0001": ("文本0", "Premium", 4.12), "X0002": ("文本1", "Premium", 4.05),
                   "Y0001": ("文本0", "Basic", None)} and not rejs
    assert by_name(recs)["X0001.wav"].extra["timestamps"] == "0.0 0.5 文"
    assert len(run("wenetspeech4tts", tmp_path, ["Basic"])[0]) == 1


def pack_voxbox_release(shared, dest: Path, per_shard: int = 300) -> list:
    """The shared M3ED sample in the release's layout: metadata/m3ed.jsonl and
    audios/m3ed/m3ed_NNNN.tar.gz whose members sit flat (no m3ed/ prefix)."""
    src = shared / "data" / "voxbox-m3ed"
    lines = (src / "m3ed.jsonl").read_text(encoding="utf-8").splitlines()
    write(dest / "metadata" / "m3ed.jsonl", "\n".join(lines) + "\n")
    rows = [json.loads(line) for line in lines]
    for n in range(0, len(rows), per_shard):
        chunk = rows[n:n + per_shard]
        tar_folder(dest / "audios" / "m3ed" / f"m3ed_{n // per_shard:04d}.tar.gz",
                   [(r["wav_path"].split("/", 1)[1], src / "audios" / r["wav_path"]) for r in chunk], gz=True)
    return rows


@pytest.mark.slow
def test_voxbox_release_recipe(tmp_path, shared):
    rows = pack_voxbox_release(shared, tmp_path)
    recs, rejs, _ = run("voxbox", tmp_path, ["m3ed"])
    assert not rejs and len(recs) == 653
    mine = by_name(recs)
    for row in rows:
        r = mine[row["wav_path"].split("/", 1)[1]]
        assert (r.gender, r.age, r.emotion, r.text, r.language, r.split) == (
            row["gender"], row["age"], row["emotion"], row["text"] or None, row["language"], row["split"])
        assert r.gender_source == r.age_source == r.emotion_source == "native"
        assert r.extra["release"]["pitch"] == row["pitch"] and r.pitch is None
    kept, _, _ = run("voxbox", tmp_path, ["m3ed"], keep_release_values=True)
    assert sorted(r.pitch for r in kept.values()) == sorted(row["pitch"] for row in rows)


def test_every_voxbox_source_has_a_catalog_entry_and_a_recipe():
    from voxbox.sources.catalog import load_catalog

    cat = load_catalog()
    wanted = ["aishell3", "casia", "emilia", "esd", "hq_conversations", "m3ed", "magicdata", "mer2023", "ncssd",
              "wenetspeech4tts", "cremad", "dailytalk", "emns", "emovdb", "expresso", "gigaspeech", "hifitts",
              "iemocap", "jl_corpus", "librispeech", "libritts_r", "mead", "meld", "mls_english", "msp_podcast",
              "ravdess", "savee", "tess", "vctk"]
    assert len(wanted) == 29
    assert all(n in cat for n in wanted)
    assert [n for n in wanted if n not in recipe_names()] == []
    for n in wanted:
        assert cat[n].voxbox_subset and cat[n].voxbox_hours and cat[n].access in ("open", "gated", "restricted")


@pytest.mark.slow
def test_voxbox_release_build_matches_the_release(tmp_path, shared):
    """`voxbox build --corpus voxbox --root DIR -s m3ed` on the M3ED sample packed into the
    release layout: 653 records, labels equal to the release, and the recomputed method
    fields equal to it as tests/test_conformance_m3ed.py requires."""
    from test_conformance_m3ed import AUDIO_FIELDS, TEXT_REPLACED, release_spells_text
    from voxbox.cli import main
    from voxbox.dataset.reader import open_dataset

    rows = pack_voxbox_release(shared, tmp_path / "release")
    out = tmp_path / "out"
    assert main(["build", "--corpus", "voxbox", "--root", str(tmp_path / "release"), "-s", "m3ed",
                 "--out", str(out), "--format", "parquet", "--workers", "1"]) == 0
    built = {r.extra["release_wav_path"]: r for r in open_dataset(out).records()}
    assert len(built) == 653 and not list(open_dataset(out).rejects())
    bad_audio, bad_required = [], []
    for row in rows:
        r = built[row["wav_path"]]
        assert (r.gender, r.age, r.emotion, r.text, r.language) == (
            row["gender"], row["age"], row["emotion"], row["text"] or None, row["language"])
        if any(getattr(r, f) != row[f] for f in AUDIO_FIELDS):
            bad_audio.append(row["index"])
        consistent = (len(row["syllables"].split()) == row["syllable_num"] and release_spells_text(row)
                      and row["index"] not in TEXT_REPLACED)
        if consistent and (r.syllable_num, r.speed) != (row["syllable_num"], row["speed"]):
            bad_required.append((row["index"], r.syllable_num, r.speed, row["syllable_num"], row["speed"]))
    assert len(bad_audio) <= 0.01 * len(rows), bad_audio
    assert not bad_required, bad_required
