"""`voxbox serve` without a browser: the query table against a Python reference, the shard
store, the API in-process (Starlette's TestClient), path traversal attempts, the access
rules, corrections and `voxbox build --corrections`. The browser tests are in
test_serve_browser.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from serve_helpers import Server, env  # noqa: E402
from synthetic_records import write_synthetic_dataset  # noqa: E402
from voxbox_build_fixtures import make_corpus  # noqa: E402

pytest.importorskip("duckdb")
pytest.importorskip("starlette")
pytest.importorskip("httpx")

from voxbox.errors import VoxboxError  # noqa: E402


# ------------------------------------------------------------------------------------
# Fixtures
# ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return write_synthetic_dataset(tmp_path_factory.mktemp("synthetic") / "ds", 3000, shards=3, seed=1)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A real built folder with audio (both formats) and a rejects file."""
    from voxbox.record import Rejection
    from voxbox.shards import write_dataset

    tmp = tmp_path_factory.mktemp("small")
    recs = make_corpus(tmp / "corpus", n=8)
    rejects = [Rejection("prepare", "spk0/utt000.wav", "audio_too_short", recs[0].index, "test"),
               Rejection("prepare", "../../../../../../etc/passwd", "unexplained_file", "synth_ffffffffffffffff"),
               Rejection("prepare", "/etc/passwd", "unexplained_file", None)]
    write_dataset(recs[1:], tmp / "ds", name="small", rejects=rejects, shard_records=3)
    return tmp / "ds"


def _card(path) -> str:
    from voxbox.dataset import open_dataset
    from voxbox.dataset.stats import collect_stats
    from voxbox.release.card import render_card

    ds = open_dataset(path)
    return render_card(ds, collect_stats(ds, progress=False))


def make_client(dataset: Path, tmp: Path, **settings):
    from starlette.testclient import TestClient

    from voxbox.serve.app import create_app
    from voxbox.serve.state import Settings

    st = Settings(dataset_dir=dataset, table_dir=tmp / "cache", **settings)
    return TestClient(create_app(st), base_url="http://127.0.0.1:7860")


@pytest.fixture
def client(small, tmp_path):
    with make_client(small, tmp_path) as c:
        yield c


# ------------------------------------------------------------------------------------
# The query table
# ------------------------------------------------------------------------------------

def _reference(records, pred, key, desc=False, page=0, size=50):
    rows = [r for r in records if pred(r)]
    present = [r for r in rows if getattr(r, key) is not None]
    missing = [r for r in rows if getattr(r, key) is None]
    present.sort(key=lambda r: r.index)
    present.sort(key=lambda r: getattr(r, key), reverse=desc)  # stable: index breaks ties
    ordered = present + sorted(missing, key=lambda r: r.index)  # NULLS LAST
    return len(rows), [r.index for r in ordered[page * size:(page + 1) * size]]


CASES = [
    ("gender=female&pitch_level=high&sort=-pitch", lambda r: r.gender == "female" and r.pitch_level == "high",
     "pitch", True, 0),
    ("gender=female&pitch_level=high&sort=-pitch&page=2", lambda r: r.gender == "female" and r.pitch_level == "high",
     "pitch", True, 2),
    ("corpus=vctk&corpus=esd&duration_min=3&duration_max=7.5&sort=speed",
     lambda r: r.corpus in ("vctk", "esd") and 3 <= r.duration <= 7.5, "speed", False, 0),
    ("q=GARDEN%20window&sort=-duration", lambda r: "garden window" in r.text.lower(), "duration", True, 0),
    ("gender_source=predicted&gender_confidence_min=0.9&sort=gender_confidence",
     lambda r: r.gender_source == "predicted" and r.gender_confidence >= 0.9, "gender_confidence", False, 0),
    ("emotion_source=unknown&split=test&sort=index", lambda r: r.split == "test", "index", False, 0),
    ("q=garden&page=1000", lambda r: "garden" in r.text, "index", False, 1000),  # past the end: still counted
    ("sort=-gender_confidence&page=1", lambda r: True, "gender_confidence", True, 1),
    ("dnsmos_ovrl_min=3.5&sort=-dnsmos_ovrl", lambda r: r.dnsmos_ovrl is not None and r.dnsmos_ovrl >= 3.5,
     "dnsmos_ovrl", True, 0),
    ("sort=dnsmos_ovrl&page=59", lambda r: True, "dnsmos_ovrl", False, 59),  # the last page: nulls last
    ("speaker=spk7&language=en", lambda r: r.speaker == "spk7" and r.language == "en", "index", False, 0),
]


def test_pages_match_a_python_reference(synthetic, tmp_path):
    from urllib.parse import parse_qsl

    from voxbox.dataset import open_dataset
    from voxbox.serve.table import RecordTable

    records = list(open_dataset(synthetic).records())
    table = RecordTable(open_dataset(synthetic), tmp_path)
    try:
        for query, pred, key, desc, page in CASES:
            total, want = _reference(records, pred, key, desc, page)
            got = table.page(table.parse(parse_qsl(query)))
            assert got["total"] == total, query
            assert [r["index"] for r in got["rows"]] == want, query
            assert total > 0, f"{query}: the case selects nothing, so it tests nothing"
    finally:
        table.close()


def test_bad_queries_are_clear_errors(synthetic, tmp_path):
    from voxbox.dataset import open_dataset
    from voxbox.serve.table import RecordTable

    table = RecordTable(open_dataset(synthetic), tmp_path)
    try:
        for params, msg in ((["sort", "text; DROP TABLE records"], "cannot sort by"),
                            (["pitch_min", "high"], "not a number"), (["size", "100000"], "size must be"),
                            (['gender" OR 1=1 --', "x"], "unknown filter"), (["page", "x"], "not a whole number"),
                            (["duration_max", "nan"], "not a finite number")):
            with pytest.raises(VoxboxError, match=msg):
                table.parse([tuple(params)])
        # a value is a bound parameter: quotes are data, not SQL
        got = table.page(table.parse([("speaker", "x' OR '1'='1")]))
        assert got["total"] == 0
    finally:
        table.close()


def test_the_table_is_cached_per_dataset_state(synthetic, tmp_path):
    from voxbox.dataset import open_dataset
    from voxbox.serve.table import RecordTable

    t1 = RecordTable(open_dataset(synthetic), tmp_path)
    path, mtime = t1.path, t1.path.stat().st_mtime_ns
    t1.close()
    t2 = RecordTable(open_dataset(synthetic), tmp_path)
    assert t2.path == path and path.stat().st_mtime_ns == mtime  # reused, not rebuilt
    t2.close()
    assert not list(tmp_path.glob("*.partial"))


def test_facets_count_every_value(synthetic, tmp_path):
    from collections import Counter

    from voxbox.dataset import open_dataset
    from voxbox.serve.table import RecordTable

    records = list(open_dataset(synthetic).records())
    table = RecordTable(open_dataset(synthetic), tmp_path)
    try:
        facets = table.facets()
        assert dict(facets["categorical"]["pitch_level"]["values"]) == Counter(r.pitch_level for r in records)
        assert facets["numeric"]["pitch"]["min"] == min(r.pitch for r in records)
        assert "gender_confidence" in facets["numeric"] and "rid" not in facets["numeric"]
    finally:
        table.close()


@pytest.mark.parametrize("formats", [("webdataset",), ("parquet",)])
def test_store_reads_each_record_and_its_audio_by_position(tmp_path, formats):
    from voxbox.dataset import open_dataset
    from voxbox.serve.store import ShardStore
    from voxbox.serve.table import RecordTable
    from voxbox.shards import write_dataset

    recs = make_corpus(tmp_path / "corpus", n=7)
    write_dataset(recs, tmp_path / "ds", formats=formats, shard_records=3)
    ds = open_dataset(tmp_path / "ds")
    table, store = RecordTable(ds, tmp_path / "cache"), ShardStore(ds)
    try:
        for rec, audio, ext in ds.samples():
            shard, row = table.locate(rec.index)
            assert store.record(shard, row) == rec
            assert store.audio(shard, row) == (audio, ext)
        assert table.locate("nope") is None
        got = table.page(table.parse([("size", "5"), ("page", "1")]))
        assert got["total"] == 7 and [r["index"] for r in got["rows"]] == sorted(r.index for r in recs)[5:]
    finally:
        table.close()


def test_a_shard_outside_the_folder_is_refused(small, tmp_path):
    import shutil

    from voxbox.dataset import open_dataset
    from voxbox.serve.store import ShardStore

    ds_dir = tmp_path / "ds"
    shutil.copytree(small, ds_dir)
    index = json.loads((ds_dir / "index.json").read_text())
    outside = tmp_path / "outside.parquet"
    shutil.copy(ds_dir / index["shards"][0]["files"]["parquet"]["path"], outside)
    index["shards"][0]["files"]["parquet"]["path"] = "../outside.parquet"
    (ds_dir / "index.json").write_text(json.dumps(index))
    with pytest.raises(VoxboxError, match="outside the dataset folder"):
        ShardStore(open_dataset(ds_dir))


# ------------------------------------------------------------------------------------
# The API, in process
# ------------------------------------------------------------------------------------

def test_record_audio_and_analysis(client, small):
    from voxbox.dataset import open_dataset

    rec, audio, ext = next(open_dataset(small).samples())
    view = client.get(f"/api/record/{rec.index}").json()
    assert view["record"]["index"] == rec.index and view["audio_ext"] == ext == "flac"
    assert view["provenance"]["index"].startswith("make_index")
    assert [e["task"] for e in view["export"]] == ["tts", "controllable_tts"]
    assert all(e["skipped"] == "no_tokens" for e in view["export"])
    r = client.get(f"/api/record/{rec.index}/audio")
    assert r.status_code == 200 and r.content == audio and r.headers["content-type"] == "audio/flac"
    part = client.get(f"/api/record/{rec.index}/audio", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == audio[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(audio)}"
    assert client.get(f"/api/record/{rec.index}/audio", headers={"Range": "bytes=999999-"}).status_code == 416
    a = client.get(f"/api/record/{rec.index}/analysis").json()
    assert 0 <= a["speech_start"] < a["speech_end"] <= a["duration"] + 1e-9
    assert len(a["envelope"]["max"]) > 100 and max(a["pitch"]["f0"]) > 0
    # no model folder: reconstruction and synthesis say what is missing
    r = client.get(f"/api/record/{rec.index}/reconstruction")
    assert r.status_code == 400 and "--model-dir" in r.json()["error"]
    r = client.post("/api/synth", json={"mode": "control", "text": "hi", "gender": "male", "pitch": "low",
                                        "speed": "low"})
    assert r.status_code == 400 and "LLM" in r.json()["error"]


TRAVERSALS = [
    "/api/record/..%2F..%2Findex.json/audio", "/api/record/%2e%2e%2findex.json/audio",
    "/api/record/..%2f..%2f..%2f..%2fetc%2fpasswd", "/static/..%2F__init__.py", "/static/%2e%2e%2fapp.py",
    "/static/../app.py", "/api/rejects/-1/audio", "/api/rejects/99/audio",
    "/api/record/index.json/audio", "/api/synth/..%2F..%2Findex.json", "/etc/passwd", "/../../etc/passwd",
]


def test_no_request_path_reaches_the_filesystem(client, small):
    secrets = [Path("/etc/passwd").read_bytes()[:40], (small / "index.json").read_bytes()[:40],
               Path(__file__).with_name("conftest.py").read_bytes()[:40]]
    for url in TRAVERSALS:
        r = client.get(url)
        assert r.status_code in (404, 400), (url, r.status_code)
        assert not any(s in r.content for s in secrets), url
    # a query parameter named like a path is ignored: the record's own audio comes back
    from voxbox.dataset import open_dataset

    rec, audio, _ = next(open_dataset(small).samples())
    r = client.get(f"/api/record/{rec.index}/audio?path=/etc/passwd&file=../../index.json")
    assert r.content == audio
    # rejects: the readable one plays (its path is inside its corpus root), the escaping ones do not
    rows = client.get("/api/rejects").json()["rows"]
    assert len(rows) == 3
    for row in rows:
        r = client.get(f"/api/rejects/{row['line']}/audio")
        if "passwd" in row["path"]:
            assert not row["playable"] and r.status_code == 404 and not any(s in r.content for s in secrets)
        else:
            assert row["playable"] and r.status_code == 200 and r.content[:4] == b"RIFF"


def test_pages_and_assets(client):
    for path in ("/", "/records?gender=male", "/record/anything", "/rejects", "/synth"):
        r = client.get(path)
        assert r.status_code == 200 and b'<script src="/static/app.js"' in r.content
        assert "default-src 'none'" in r.headers["content-security-policy"]
    js = client.get("/static/app.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert client.get("/favicon.ico").status_code == 200
    page = client.get("/").text + js.text + client.get("/static/app.css").text
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page


def test_overview_becomes_ready_with_the_stats(client, small):
    import time

    for _ in range(100):
        data = client.get("/api/overview").json()
        if data["ready"]:
            break
        time.sleep(0.1)
    assert data["ready"] and data["records"] == 7
    assert {r["value"]: r["records"] for r in data["tables"]["gender"]} == {"female": 3, "male": 4}
    assert {(r["stage"], r["reason"]): r["count"] for r in data["rejects"]} == {
        ("prepare", "audio_too_short"): 1, ("prepare", "unexplained_file"): 2}


def test_corrections_api(client, small):
    from voxbox.dataset import open_dataset

    rec = next(r for r in open_dataset(small).records() if r.gender == "male")
    post = lambda body: client.post("/api/corrections", json=body)  # noqa: E731
    r = post({"index": rec.index, "field": "gender", "new": "female", "who": "ann"})
    assert r.status_code == 201, r.text
    r = post({"index": rec.index, "field": "gender", "new": "male", "who": "bob"})
    assert r.status_code == 201
    r = post({"index": rec.index, "field": "text", "new": "  fixed   words ", "who": "ann"})
    assert r.status_code == 201
    lines = [json.loads(x) for x in (small / "corrections.jsonl").read_text().splitlines()]
    assert [(c["field"], c["old"], c["new"], c["who"]) for c in lines] == [
        ("gender", "male", "female", "ann"), ("gender", "female", "male", "bob"), ("text", rec.text, "fixed words", "ann")]
    assert client.get(f"/api/corrections?index={rec.index}").json()["corrections"] == lines
    for body, status, msg in (
            ({"index": rec.index, "field": "pitch", "new": "1"}, 400, "corrections apply to"),
            ({"index": rec.index, "field": "gender", "new": "robot"}, 400, "not one of"),
            ({"index": rec.index, "field": "gender", "new": "male"}, 400, "already"),
            ({"index": rec.index, "field": "text", "new": "   "}, 400, "empty"),
            ({"index": "nope", "field": "gender", "new": "male"}, 404, "no record")):
        r = post(body)
        assert r.status_code == status and msg in r.json()["error"], (body, r.text)
    assert len((small / "corrections.jsonl").read_text().splitlines()) == 3
    (small / "corrections.jsonl").unlink()


# ------------------------------------------------------------------------------------
# Who may talk to it
# ------------------------------------------------------------------------------------

def test_wildcard_bind_needs_a_token(small, tmp_path):
    res = subprocess.run([sys.executable, "-m", "voxbox", "serve", str(small), "--host", "0.0.0.0",
                          "--table-dir", str(tmp_path)], env=env(), capture_output=True, text=True, timeout=120)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --host 0.0.0.0") and "--auth-token" in lines[0]


def test_token_host_and_origin_rules(small, tmp_path):
    from starlette.testclient import TestClient

    from voxbox.serve.app import create_app
    from voxbox.serve.state import Settings

    st = Settings(dataset_dir=small, table_dir=tmp_path, host="0.0.0.0", auth_token="s3cret-token")
    with TestClient(create_app(st), base_url="http://example.lan:7860") as c:
        assert c.get("/api/info").status_code == 401
        assert c.get("/api/info", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/api/info", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
        r = c.get("/records?gender=male&token=s3cret-token", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/records?gender=male"
        assert "HttpOnly" in r.headers["set-cookie"]
        assert c.get("/api/info").status_code == 200  # the cookie now carries it
    st = Settings(dataset_dir=small, table_dir=tmp_path)  # loopback, no token
    with TestClient(create_app(st), base_url="http://127.0.0.1:7860") as c:
        assert c.get("/api/info").status_code == 200
        assert c.get("/api/info", headers={"Host": "evil.example:7860"}).status_code == 421  # DNS rebinding
        assert c.get("/api/info", headers={"Host": "localhost:7860"}).status_code == 200
        body = json.dumps({"index": "x", "field": "gender", "new": "male"})
        r = c.post("/api/corrections", content=body, headers={"Content-Type": "text/plain"})
        assert r.status_code == 415
        r = c.post("/api/corrections", content=body, headers={"Content-Type": "application/json",
                                                              "Origin": "http://evil.example"})
        assert r.status_code == 403
    assert not (small / "corrections.jsonl").exists()


def test_busy_port_is_a_clear_error():
    from voxbox.serve import open_socket

    sock = open_socket("127.0.0.1", 0)
    try:
        with pytest.raises(VoxboxError, match="already in use"):
            open_socket("127.0.0.1", sock.getsockname()[1])
    finally:
        sock.close()


@pytest.mark.slow
def test_the_command_serves_until_stopped(small, tmp_path):
    import httpx

    srv = Server(str(small), "--table-dir", str(tmp_path))
    try:
        info = httpx.get(srv.url + "api/info", timeout=10).json()
        assert info["records"] == 7 and info["reconstruction"] is False
        assert srv.url.startswith("http://127.0.0.1:")
    finally:
        srv.stop()
    assert srv.proc.returncode is not None


# ------------------------------------------------------------------------------------
# Corrections in a build
# ------------------------------------------------------------------------------------

def test_apply_marks_corrections_and_clears_what_they_invalidate():
    from voxbox.build.corrections import apply
    from voxbox.record import Utterance

    rec = Utterance(index="c_1", gender="male", gender_source="predicted", gender_model="builtin",
                    gender_confidence=0.6, text="old words", syllable_num=2, speed=3.0, speed_level="low",
                    pitch_level="high", null_reasons={"age": "no_label_no_model"})
    fixes = {"gender": {"new": "female", "who": "ann", "when": "T1"},
             "text": {"new": "new words here", "who": "bob", "when": "T2"},
             "age": {"new": "Elderly", "who": "ann", "when": "T3"}}
    out = apply(rec, fixes)
    assert (out.gender, out.gender_source, out.gender_model, out.gender_confidence) == ("female", "native", None, None)
    assert out.age == "Elderly" and out.age_source == "native" and out.text == "new words here"
    assert out.syllable_num is None and out.speed is None and out.pitch_level is None
    assert out.null_reasons == {"syllable_num": "label_corrected", "syllables": "label_corrected",
                                "speed": "label_corrected", "speed_level": "label_corrected",
                                "speed_value": "label_corrected", "pitch_level": "label_corrected",
                                "pitch_std_level": "label_corrected"}
    assert out.extra["corrected"]["gender"] == {"old": "male", "new": "female", "who": "ann", "when": "T1"}
    assert out.extra["corrected"]["text"]["old"] == "old words"
    assert apply(rec, {}) is rec


def test_a_bad_corrections_file_stops_the_build_at_once(tmp_path):
    from voxbox.build.corrections import read_corrections

    bad = tmp_path / "c.jsonl"
    bad.write_text('{"index": "a", "field": "gender", "new": "female", "who": "x"}\n'
                   '{"index": "b", "field": "gender", "new": "alien", "who": "x"}\n')
    with pytest.raises(VoxboxError, match=r"c.jsonl:2: gender: 'alien' is not one of"):
        list(read_corrections(bad))
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("")
    res = subprocess.run([sys.executable, "-m", "voxbox", "build", "--manifest", str(manifest), "--out",
                          str(tmp_path / "out"), "--corrections", str(bad)], env=env(), capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 1 and res.stderr.strip().splitlines() == [
        f"error: {bad}:2: gender: 'alien' is not one of female, male"]
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_build_applies_corrections_and_the_card_counts_them(tmp_path):
    from voxbox.build.corrections import append_correction
    from voxbox.dataset import open_dataset
    from voxbox.manifest import write_manifest

    recs = make_corpus(tmp_path / "corpus", n=4)
    manifest = tmp_path / "m.jsonl"
    write_manifest(manifest, recs)
    fixes = tmp_path / "corrections.jsonl"
    append_correction(fixes, {"index": recs[1].index, "field": "emotion", "old": None, "new": "HAPPY",
                              "who": "ann", "when": "2026-01-01T00:00:00Z"})
    append_correction(fixes, {"index": "not_in_input", "field": "age", "old": None, "new": "Child",
                              "who": "ann", "when": "2026-01-01T00:00:00Z"})
    res = subprocess.run([sys.executable, "-m", "voxbox", "build", "--manifest", str(manifest), "--out",
                          str(tmp_path / "out"), "--stages", "", "--corrections", str(fixes)],
                         env=env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "1 record(s) corrected (emotion 1); 1 corrected record(s) are not in this input" in res.stderr
    got = {r.index: r for r in open_dataset(tmp_path / "out").records()}
    assert got[recs[1].index].emotion == "HAPPY" and got[recs[1].index].emotion_source == "native"
    assert got[recs[1].index].extra["corrected"]["emotion"]["who"] == "ann"
    assert all(not (r.extra or {}).get("corrected") for i, r in got.items() if i != recs[1].index)
    assert "corrected by hand" in _card(tmp_path / "out")
