"""`voxbox serve` driven in a real headless Chromium (Playwright for Python + the system chromium).

One real server process over a real built dataset (annotate + tiny BiCodec tokens) and a
tiny Spark-TTS folder. Each test opens pages like a person would, fails on any console
error or failed request, and saves screenshots (to $VOXBOX_SCREENSHOTS, else pytest's tmp).
Chromium comes from Debian's `chromium` package (scripts/install.sh --test); Playwright's
own browser download is never used.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from serve_helpers import Server, build, mixed_manifest  # noqa: E402

playwright = pytest.importorskip("playwright.sync_api")
pytest.importorskip("duckdb")
pytest.importorskip("uvicorn")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, shared, tiny_bicodec):
    tmp = tmp_path_factory.mktemp("serve-data")
    manifest = mixed_manifest(tmp, shared)
    out = tmp / "built"
    build(manifest, out, tiny_bicodec)
    return {"manifest": manifest, "dir": out, "tmp": tmp}


@pytest.fixture(scope="module")
def sparktts(tmp_path_factory, tiny_bicodec):
    from tiny_sparktts import build_tiny_sparktts

    return build_tiny_sparktts(tmp_path_factory.mktemp("sparktts") / "tiny", tiny_bicodec)


@pytest.fixture(scope="module")
def server(dataset, sparktts, tmp_path_factory):
    srv = Server(str(dataset["dir"]), "--model-dir", str(sparktts), "--max-new-tokens", "80",
                 "--table-dir", str(tmp_path_factory.mktemp("serve-cache")))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    where = os.environ.get("VOXBOX_SCREENSHOTS")
    path = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("chromium not found: apt-get install -y chromium (scripts/install.sh --test does it)")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--autoplay-policy=no-user-gesture-required"])
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    """A fresh page that records console errors, page errors and failed requests."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, base_url=server.url)
    pg = ctx.new_page()
    problems = []
    pg.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    # net::ERR_ABORTED is a request cut short by the test navigating away (or by an audio
    # element replacing a range request); anything else is a real failure.
    pg.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} {r.failure}")
          if "ERR_ABORTED" not in (r.failure or "") else None)
    pg.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    yield pg
    ctx.close()
    assert not problems, "\n".join(problems) + "\n--- server log ---\n" + server.log


def _card(path) -> str:
    from voxbox.dataset import open_dataset
    from voxbox.dataset.stats import collect_stats
    from voxbox.release.card import render_card

    ds = open_dataset(path)
    return render_card(ds, collect_stats(ds, progress=False))


def _records(dataset):
    from voxbox.dataset import open_dataset

    return list(open_dataset(dataset["dir"]).records())


def _wait_audio(page, selector: str, timeout: float = 60_000) -> float:
    """Wait until the audio element has loaded its metadata; its duration in seconds."""
    page.wait_for_function("sel => { const a = document.querySelector(sel); "
                           "return a && a.readyState >= 1 && isFinite(a.duration) && a.duration > 0; }",
                           arg=selector, timeout=timeout)
    assert page.eval_on_selector(selector, "a => a.error") is None
    return page.eval_on_selector(selector, "a => a.duration")


def test_overview_shows_the_statistics_and_links_to_records_and_rejects(page, dataset, screenshots):
    recs = _records(dataset)
    page.goto("/")
    page.wait_for_selector("#summary", timeout=60_000)
    assert f"{len(recs)} records" in page.inner_text("#summary")
    genders = page.inner_text("table[data-field=gender]")
    n_female = sum(r.gender == "female" for r in recs)
    assert "female" in genders and str(n_female) in genders
    assert page.locator("svg.hist line.boundary").count() >= 8  # pitch boundaries for both genders
    assert page.locator("#level-grid a").count() >= 1
    page.screenshot(path=str(screenshots / "overview.png"), full_page=True)
    # every reject reason links to the rejects behind it
    page.click('#rejects-by-reason a >> text="audio_too_short"')
    page.wait_for_selector("#rejects-table")
    assert "reason=audio_too_short" in page.url
    rows = page.locator("#rejects-table tr").count() - 1
    assert rows == 1 and "short.wav" in page.inner_text("#rejects-table")
    # a readable rejected file plays
    page.click("#rejects-table button.play")
    _wait_audio(page, "#rejects-table audio")
    page.screenshot(path=str(screenshots / "rejects.png"), full_page=True)
    # a count in the overview leads to its records
    page.goto("/")
    page.wait_for_selector("#summary", timeout=60_000)
    page.click("table[data-field=gender] a >> text=\"male\"")
    page.wait_for_selector("#records-table")
    assert page.url.endswith("/records?gender=male")
    assert page.locator("#records-table tr[data-index]").count() == sum(r.gender == "male" for r in recs)


def test_filter_by_gender_and_pitch_level_keeps_the_state_in_the_url(page, dataset, screenshots):
    recs = _records(dataset)
    male = [r for r in recs if r.gender == "male"]
    level = sorted({r.pitch_level for r in male if r.pitch_level})[0]
    want = sorted((r for r in male if r.pitch_level == level), key=lambda r: r.index)
    page.goto("/records")
    page.wait_for_selector("#records-table")
    assert page.locator("#records-table tr[data-index]").count() == len(recs)
    page.select_option("select[name=gender]", "male")
    page.wait_for_url("**/records?gender=male")
    page.wait_for_selector("#records-table")
    page.select_option("select[name=pitch_level]", level)
    page.wait_for_url(f"**pitch_level={level}**")
    page.wait_for_selector("#records-table")
    got = page.eval_on_selector_all("#records-table tr[data-index]", "rows => rows.map(r => r.dataset.index)")
    assert got == [r.index for r in want]
    assert f"{len(want)} records" in page.inner_text("#total")
    # sort by pitch, descending: click the header twice
    page.click("#records-table th[data-col=pitch]")
    page.wait_for_url("**sort=pitch**")
    page.click("#records-table th[data-col=pitch]")
    page.wait_for_url("**sort=-pitch**")
    page.wait_for_selector("#records-table")
    got = page.eval_on_selector_all("#records-table tr[data-index]", "rows => rows.map(r => r.dataset.index)")
    assert got == [r.index for r in sorted(want, key=lambda r: (-r.pitch, r.index))]
    page.screenshot(path=str(screenshots / "records-filtered.png"), full_page=True)
    # the URL alone restores the view (shareable)
    url = page.url
    page.goto("/")
    page.wait_for_selector("#summary", timeout=60_000)
    page.goto(url)
    page.wait_for_selector("#records-table")
    assert page.eval_on_selector("select[name=gender]", "s => s.value") == "male"
    assert page.eval_on_selector("select[name=pitch_level]", "s => s.value") == level
    assert page.eval_on_selector_all("#records-table tr[data-index]", "rows => rows.map(r => r.dataset.index)") == got


def test_record_view_plays_audio_and_shows_waveform_provenance_and_prompt(page, dataset, screenshots):
    from voxbox.sparktts.export import examples_for

    rec = next(r for r in _records(dataset) if r.corpus == "libritts")
    page.goto("/records")
    page.wait_for_selector("#records-table")
    page.click(f"#records-table a >> text={rec.index}")
    page.wait_for_selector("#waveform", timeout=60_000)
    duration = _wait_audio(page, "#audio")
    assert duration == pytest.approx(rec.num_samples / rec.sample_rate, abs=0.05)
    page.eval_on_selector("#audio", "a => a.play()")
    page.wait_for_function("() => document.querySelector('#audio').currentTime > 0.2", timeout=30_000)
    assert page.locator("#waveform rect.trimmed").count() == 2
    assert page.locator("#waveform g.pitch path").count() == 1
    prov = page.inner_text("tr[data-field=gender] td.prov")
    assert "native" in prov
    assert "annotate" in page.inner_text("tr[data-field=pitch] td.prov")
    prompts = {ex.task: ex.prompt for ex in examples_for(rec)}
    assert page.inner_text("[data-task=tts] pre.prompt") == prompts["tts"]
    assert page.inner_text("[data-task=controllable_tts] pre.prompt") == prompts["controllable_tts"]
    page.screenshot(path=str(screenshots / "record.png"), full_page=True)


def test_correction_is_saved_and_a_rebuild_applies_it(page, dataset, screenshots, tiny_bicodec):
    from voxbox.dataset import open_dataset
    rec = next(r for r in _records(dataset) if r.gender == "male")
    page.goto(f"/record/{rec.index}")
    page.wait_for_selector("#correction-form")
    page.fill("#who", "tester")
    page.dispatch_event("#who", "change")
    page.select_option("#correction-form select[name=field]", "gender")
    page.select_option("#correction-form select[name=new]", "female")
    page.click("#correction-form button[type=submit]")
    page.wait_for_selector("#correction-status.ok")
    assert page.locator("#corrections-list tr.correction").count() == 1
    page.screenshot(path=str(screenshots / "correction.png"), full_page=True)
    lines = [json.loads(x) for x in (dataset["dir"] / "corrections.jsonl").read_text().splitlines()]
    assert len(lines) == 1
    c = lines[0]
    assert (c["index"], c["field"], c["old"], c["new"], c["who"]) == (rec.index, "gender", "male", "female", "tester")
    assert c["when"].endswith("Z")
    # rebuild from the same input with the corrections
    out = dataset["tmp"] / "rebuilt"
    res = build(dataset["manifest"], out, tiny_bicodec, "--corrections", str(dataset["dir"] / "corrections.jsonl"))
    assert "1 record(s) corrected (gender 1)" in res.stderr
    new = {r.index: r for r in open_dataset(out).records()}[rec.index]
    assert new.gender == "female" and new.gender_source == "native" and new.gender_model is None
    assert new.extra["corrected"]["gender"] == {"old": "male", "new": "female", "who": "tester", "when": c["when"]}
    card = _card(out)
    assert "corrected by hand" in card and "gender 1" in card


def test_reconstruction_and_synthesis_produce_playable_audio(page, dataset, screenshots):
    rec = next(r for r in _records(dataset) if r.corpus == "libritts")
    page.goto(f"/record/{rec.index}")
    page.wait_for_selector("#reconstruct")
    page.click("#reconstruct")
    recon = _wait_audio(page, "#recon")
    assert recon == pytest.approx(len(rec.semantic_tokens) * 320 / 16000, abs=0.05)
    page.click("text=clone this voice")
    page.wait_for_selector("#synth-form")
    assert page.eval_on_selector("input[name=index]", "i => i.value") == rec.index
    assert page.is_visible("input[name=index]") and not page.is_visible("select[name=gender]")
    page.check("input[name=constrain]")
    page.click("#synthesize")
    assert _wait_audio(page, "#synth-audio", timeout=240_000) > 0
    table = page.inner_text("#asked-measured")
    assert "reference record" in table and f"{rec.pitch:.1f}" in table
    page.screenshot(path=str(screenshots / "synth-clone.png"), full_page=True)
    page.check("input[value=control]")
    assert not page.is_visible("input[name=index]") and page.is_visible("select[name=gender]")
    page.select_option("select[name=gender]", "male")
    page.select_option("select[name=pitch]", "high")
    page.click("#synthesize")
    page.wait_for_function("() => document.querySelector('#asked-measured') && "
                           "document.querySelector('#asked-measured').innerText.includes('asked')", timeout=240_000)
    assert _wait_audio(page, "#synth-audio", timeout=60_000) > 0
    assert "high" in page.inner_text("#asked-measured")
    page.screenshot(path=str(screenshots / "synth-control.png"), full_page=True)
