"""`voxbox report`: statistics, and the HTML rendered in a real headless Chromium.

The browser is driven over the DevTools protocol through ``--remote-debugging-pipe``
(messages are NUL-separated JSON on file descriptors 3 and 4), so the test needs no
websocket library and no free TCP port. Chromium comes from Debian's ``chromium``
package (scripts/install.sh --test installs it).
"""

from __future__ import annotations

import base64
import io
import json
import os
import queue
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from test_publish import make_built_dataset

from voxbox.annotate.levels import pitch_mel
from voxbox.dataset.reader import open_dataset
from voxbox.dataset.stats import collect_stats, level_boundaries
from voxbox.release.report import write_report

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                  "--mute-audio", "--disable-extensions", "--window-size=1280,1600"]


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("chromium not found: apt-get install -y chromium (scripts/install.sh --test does it)")


class DevTools:
    """A minimal Chrome DevTools Protocol client over --remote-debugging-pipe."""

    def __init__(self, user_data_dir: Path):
        user_data_dir.mkdir(parents=True, exist_ok=True)
        self._log = user_data_dir.parent / (user_data_dir.name + ".log")
        cmd_r, self._cmd_w = os.pipe()
        self._evt_r, evt_w = os.pipe()

        def child_fds():  # runs in the child before exec: the protocol wants fds 3 (in) and 4 (out)
            # Copy first: a pipe end may itself be fd 3 or 4, and dup2 onto itself would
            # leave it close-on-exec.
            a, b = os.dup(cmd_r), os.dup(evt_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [chromium_binary(), *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}", "--remote-debugging-pipe",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(self._log, "wb"),
            preexec_fn=child_fds, close_fds=False)
        os.close(cmd_r)
        os.close(evt_w)
        self._next = 0
        self._inbox: "queue.Queue[dict]" = queue.Queue()
        self.events: list = []
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._evt_r, 1 << 16)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                self._inbox.put(json.loads(raw))
        self._inbox.put({"closed": True})

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             deadline_s: float = 60.0) -> dict:
        self._next += 1
        msg = {"id": self._next, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        try:
            os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        except BrokenPipeError:
            raise AssertionError(f"chromium exited before {method}: {self._log_tail()}") from None
        end = time.monotonic() + deadline_s
        while True:
            item = self._get(end, method)
            if item.get("id") == self._next:
                if "error" in item:
                    raise AssertionError(f"{method}: {item['error']}")
                return item.get("result", {})
            self.events.append(item)

    def wait_event(self, name: str, session: str, deadline_s: float = 60.0) -> dict:
        for e in self.events:
            if e.get("method") == name and e.get("sessionId") == session:
                return e
        end = time.monotonic() + deadline_s
        while True:
            item = self._get(end, name)
            self.events.append(item)
            if item.get("method") == name and item.get("sessionId") == session:
                return item

    def _get(self, end: float, what: str) -> dict:
        try:
            item = self._inbox.get(timeout=max(end - time.monotonic(), 0.01))
        except queue.Empty:
            raise AssertionError(f"chromium did not answer {what}") from None
        if item.get("closed"):
            raise AssertionError(f"chromium exited while waiting for {what}: {self._log_tail()}")
        return item

    def _log_tail(self) -> str:
        self.proc.poll()
        try:
            return self._log.read_text(errors="replace")[-1500:]
        except OSError:
            return "(no log)"

    def close(self) -> None:
        try:
            os.write(self._cmd_w, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
            self.proc.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        finally:
            os.close(self._cmd_w)


def render_in_chromium(html_path: Path, tmp_path: Path) -> dict:
    """Open the page, wait for load, decode every image; return images, problems, screenshot."""
    dt = DevTools(tmp_path / "chromium-profile")
    try:
        target = dt.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = dt.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            dt.send(f"{domain}.enable", session=session)
        dt.send("Page.navigate", {"url": html_path.resolve().as_uri()}, session=session)
        dt.wait_event("Page.loadEventFired", session)
        check = dt.send("Runtime.evaluate", {
            "expression": (
                "Promise.all(Array.from(document.images).map(i => i.decode().then("
                "() => ({alt: i.alt, ok: i.complete, w: i.naturalWidth, h: i.naturalHeight}),"
                " e => ({alt: i.alt, ok: false, error: String(e)}))))"),
            "awaitPromise": True, "returnByValue": True,
        }, session=session)
        images = check["result"]["value"]
        shot = dt.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=session)
        text = dt.send("Runtime.evaluate", {"expression": "document.body.innerText", "returnByValue": True},
                       session=session)["result"]["value"]
        problems = []
        for e in dt.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown":
                problems.append(("exception", p.get("exceptionDetails", {}).get("text")))
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                problems.append(("console", [a.get("value") for a in p.get("args", [])]))
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                problems.append(("log", p["entry"].get("text")))
        return {"images": images, "problems": problems, "screenshot": base64.b64decode(shot["data"]), "text": text}
    finally:
        dt.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return make_built_dataset(tmp_path_factory.mktemp("report") / "built", n=15)


def test_stats_are_right(built):
    ds = open_dataset(built)
    recs = list(ds.records())
    st = collect_stats(ds, progress=False)
    assert st.records == len(recs) == 15
    assert st.seconds == pytest.approx(sum(r.duration for r in recs))
    assert dict(st.by["gender"]) == {g: sum(r.gender == g for r in recs) for g in ("female", "male")}
    assert sum(st.level_grid.values()) == len(recs)
    assert st.level_grid[("low", "moderate")] == sum(r.pitch_level == "low" and r.speed_level == "moderate"
                                                     for r in recs)
    # Pitch histograms are per gender, in Mel; the bin of each record holds it.
    for g in ("female", "male"):
        mine = [r for r in recs if r.gender == g]
        h = st.pitch_hist[g]
        assert h.total == len(mine)
        for r in mine:
            assert h.counts[int(pitch_mel(r.pitch) // h.width)] >= 1
    assert st.speed_hist["zh"].total == sum(r.language == "zh" for r in recs)
    assert dict(st.rejects) == {"annotate: audio_too_short": 2, "prepare: unreadable_audio": 1}
    assert st.tokenized == 15 and st.global_len == {32: 15}
    assert st.semantic_codes.sum() == sum(len(r.semantic_tokens) for r in recs)
    first = recs[0].global_tokens[0]
    assert st.global_codes[first] == sum(r.global_tokens.count(first) for r in recs)
    # The oddities name the slowest and fastest records.
    odd = st.oddities()
    slowest = min(recs, key=lambda r: r.speed)
    fastest = max(recs, key=lambda r: r.speed)
    assert [o.index for o in odd if o.kind == "slowest"][0] == slowest.index
    assert [o.index for o in odd if o.kind == "fastest"][0] == fastest.index
    assert len([o for o in odd if o.kind == "slowest"]) == 5
    assert any(o.kind == "unsure_gender" for o in odd)


def test_boundaries_are_ordered_and_cover_both_groups():
    b = level_boundaries()
    for kind, groups in (("pitch", ("male", "female")), ("speed", ("zh", "en"))):
        for g in groups:
            assert len(b[kind][g]) == 4 and list(b[kind][g]) == sorted(b[kind][g])
    # VoxBox's worked example (spec voxbox.md 3.6): 180.626 Hz female is 'moderate'.
    b1, b2, b3, b4 = b["pitch"]["female"]
    assert b2 <= pitch_mel(180.626) <= b3


def test_boundaries_follow_the_pipelines_boundaries_file(tmp_path):
    from voxbox.annotate.levels import VOXBOX_BOUNDARIES

    custom = {"pitch": {"male": [100.0, 150.0, 200.0, 250.0]}, "speed": {"ja": [1.0, 2.0, 3.0, 4.0]}}
    path = tmp_path / "b.json"
    path.write_text(json.dumps(custom))
    pipeline = {"stages": [{"stage": "annotate", "params": {"boundaries": str(path)}}]}
    b = level_boundaries(pipeline)
    assert b["pitch"]["male"] == (100.0, 150.0, 200.0, 250.0)
    assert b["speed"]["ja"] == (1.0, 2.0, 3.0, 4.0)
    # Groups the file lacks keep VoxBox's values.
    assert b["pitch"]["female"] == tuple(VOXBOX_BOUNDARIES["pitch"]["female"])
    assert level_boundaries(None)["pitch"]["male"] == tuple(VOXBOX_BOUNDARIES["pitch"]["male"])


@pytest.mark.slow
def test_report_renders_in_chromium(built, tmp_path):
    from voxbox.cli import main

    out = tmp_path / "r" / "report.html"
    assert main(["report", str(built), "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    # Self-contained: every image is inline, nothing is fetched.
    srcs = re.findall(r'<img[^>]+src="([^"]+)"', page)
    assert len(srcs) == 7 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r'(src|href)="(https?:)?//', page) and "<script" not in page

    res = render_in_chromium(out, tmp_path)
    assert len(res["images"]) == 7
    for img in res["images"]:
        assert img["ok"] and img["w"] > 100 and img["h"] > 100, img
    assert res["problems"] == []
    # The screenshot decodes and is not blank.
    import matplotlib.image as mpimg

    (tmp_path / "report.png").write_bytes(res["screenshot"])  # kept for a look when the test fails
    shot = mpimg.imread(io.BytesIO(res["screenshot"]), format="png")
    assert shot.shape[0] > 1000 and shot.shape[1] >= 1000
    assert float(np.std(shot[..., :3])) > 0.05
    text = res["text"]
    for heading in ("Pitch by gender", "Speed by language", "Duration", "Hours", "Pitch level x speed level",
                    "BiCodec tokens", "Rejects by reason", "Records worth listening to"):
        assert heading in text
    slowest = min(open_dataset(built).records(), key=lambda r: r.speed)
    assert slowest.index in text
    # Every listed record has a player (data URI, nothing fetched) that chromium accepts.
    assert page.count("<audio controls") == len(re.findall(r"<tr><td>[a-z]", page.split("worth listening")[1]))


@pytest.mark.slow
def test_empty_dataset_still_renders(tmp_path):
    from voxbox.record import Rejection
    from voxbox.shards import write_dataset

    write_dataset([], tmp_path / "empty", name="empty", rejects=[Rejection("prepare", "a.wav", "unreadable_audio")])
    out = write_report(tmp_path / "empty", tmp_path / "empty.html", progress=False)
    res = render_in_chromium(out, tmp_path)
    assert len(res["images"]) == 7 and all(i["ok"] and i["w"] > 0 for i in res["images"])
    assert res["problems"] == []
    assert "prepare: unreadable_audio" not in res["text"]  # shown in the plot, not as text
    assert "No records." in res["text"]


def test_report_of_a_missing_folder_is_a_clear_error(tmp_path):
    from voxbox.cli import main

    assert main(["report", str(tmp_path / "nope"), "--out", str(tmp_path / "x.html")]) == 1
    assert not (tmp_path / "x.html").exists()


@pytest.mark.slow
def test_listening_rows_name_each_clip_once_with_its_audio(tmp_path, monkeypatch):
    """On a small dataset the 5 slowest and 5 fastest overlap: each clip is listed once, at the
    end of the scale it is nearer to, and every row plays its own audio from the shards."""
    import base64 as b64

    import soundfile as sf

    from voxbox.release import report

    folder = make_built_dataset(tmp_path / "six", n=6)
    ds = open_dataset(folder)
    recs = sorted(ds.records(), key=lambda r: r.speed)
    rows = report.listening_rows(collect_stats(ds, progress=False))
    indices = [row.odd.index for row in rows]
    assert len(indices) == len(set(indices))
    kinds = {row.odd.index: row.kinds for row in rows}
    assert "slowest" in kinds[recs[0].index] and "fastest" not in kinds[recs[0].index]
    assert "fastest" in kinds[recs[-1].index] and "slowest" not in kinds[recs[-1].index]
    assert not any({"slowest", "fastest"} <= set(k) or {"longest", "shortest"} <= set(k) for k in kinds.values())
    out = write_report(folder, tmp_path / "six.html", progress=False)
    page = out.read_text(encoding="utf-8")
    players = re.findall(r'<audio controls preload=none src="data:audio/flac;base64,([^"]+)">', page)
    assert len(players) == len(rows)
    shard_audio = {r.index: a for r, a, _ in ds.samples()}
    for row, data in zip(rows, players):
        assert b64.b64decode(data) == shard_audio[row.odd.index]
        assert sf.info(io.BytesIO(b64.b64decode(data))).frames == ds_rec(ds, row.odd.index).num_samples
    # The headline rounds hours as the tables do (0.001 h, not 0.00 in one place and 0.001 in another).
    hours = f"{collect_stats(ds, progress=False).hours:.3f}"
    assert f"<b>{hours}</b>hours" in page and f"<td class=n>{hours}</td>" in page
    # Counts tick whole records only, and a level band's label sits above the bars.
    figures = []
    monkeypatch.setattr(report, "_png", lambda fig: figures.append(fig) or "")
    st = collect_stats(ds, progress=False)
    report.render_html(st, title="t", source="s")
    count_axes = [ax for fig in figures for ax in fig.axes if "records" in (ax.get_ylabel(), ax.get_xlabel())]
    assert len(count_axes) >= 5
    for ax in count_axes:
        axis = ax.yaxis if ax.get_ylabel() == "records" else ax.xaxis
        ticks = [t for t in axis.get_majorticklocs() if axis.get_view_interval()[0] <= t <= axis.get_view_interval()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), (ax.get_title(), ticks)
    labels = [t for fig in figures for ax in fig.axes for t in ax.texts if t.get_text() in ("low", "moderate", "high")]
    bars = [p for fig in figures for ax in fig.axes for p in ax.patches]
    assert labels and min(t.get_zorder() for t in labels) > max(p.get_zorder() for p in bars)


def ds_rec(ds, index):
    return next(r for r in ds.records() if r.index == index)
