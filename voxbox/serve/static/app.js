// voxbox serve: one page, drawn from the JSON API. No framework, nothing from the network.
// Every value from the dataset goes into the page as text (never as HTML).
"use strict";

let INFO = null;
const SVGNS = "http://www.w3.org/2000/svg";
const COLORS = { female: "#c2410c", male: "#1f5f8b", unknown: "#6b7280" };
const PALETTE = ["#1f5f8b", "#c2410c", "#15803d", "#7c3aed", "#b45309", "#0e7490", "#be185d"];
const MAIN_RANGES = ["duration", "pitch", "speed", "speech_duration", "gender_confidence", "loudness", "clipping_ratio"];
const TABLE_COLUMNS = ["index", "corpus", "speaker", "gender", "pitch", "pitch_level", "speed", "speed_level",
  "duration", "emotion", "age", "text"];

// ---------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "style") el.style.cssText = v; // CSSOM, which the page's CSP allows (style attributes it does not)
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  for (const c of children.flat(Infinity)) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}

async function api(path, options) {
  const res = await fetch(path, options);
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (!res.ok) throw new Error((data && data.error) || `${res.status} ${res.statusText}`);
  return data;
}

function fmt(v, digits) {
  if (v === null || v === undefined) return "–";
  if (typeof v === "number") {
    if (Number.isInteger(v)) return v.toLocaleString("en");
    return v.toFixed(digits === undefined ? 3 : digits);
  }
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function link(href, text) { return h("a", { href, "data-nav": true }, text); }

function recordsUrl(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) q.append(k, v);
  return "/records?" + q.toString();
}

function recordUrl(index) { return "/record/" + encodeURIComponent(index); }

function apiRecord(index, what) {
  return "/api/record/" + encodeURIComponent(index) + (what ? "/" + what : "");
}

function show(...nodes) {
  const main = document.getElementById("main");
  main.replaceChildren(...nodes.flat(Infinity).filter(Boolean));
}

function failure(e) { return h("p", { class: "error" }, String(e.message || e)); }

function who() {
  const el = document.getElementById("who");
  return (el.value || "").trim() || (INFO && INFO.default_who) || "unknown";
}

// ---------------------------------------------------------------------------------------
// Router
// ---------------------------------------------------------------------------------------

function navigate(url, replace) {
  if (replace) history.replaceState(null, "", url); else history.pushState(null, "", url);
  route();
}

document.addEventListener("click", (ev) => {
  const a = ev.target.closest("a[data-nav]");
  if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
  ev.preventDefault();
  navigate(a.getAttribute("href"));
});
window.addEventListener("popstate", () => route());

async function route() {
  const path = location.pathname;
  const params = new URLSearchParams(location.search);
  let tab = "overview";
  try {
    if (path.startsWith("/record/")) { tab = "records"; await renderRecord(decodeURIComponent(path.slice(8))); }
    else if (path === "/records") { tab = "records"; await renderRecords(params); }
    else if (path === "/rejects") { tab = "rejects"; await renderRejects(params); }
    else if (path === "/synth") { tab = "synth"; await renderSynth(params); }
    else await renderOverview();
  } catch (e) {
    show(failure(e));
  }
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("active", a.dataset.tab === tab);
}

async function start() {
  INFO = await api("/api/info");
  document.getElementById("dataset-name").textContent =
    `${INFO.name}: ${INFO.records.toLocaleString("en")} records, ${INFO.hours.toFixed(2)} h`;
  const whoInput = document.getElementById("who");
  whoInput.value = localStorage.getItem("voxbox-who") || INFO.default_who;
  whoInput.addEventListener("change", () => localStorage.setItem("voxbox-who", whoInput.value.trim()));
  document.querySelector('header nav a[data-tab="synth"]').classList.toggle("off", !INFO.synthesis);
  document.body.dataset.ready = "1";
  await route();
}

// ---------------------------------------------------------------------------------------
// Overview
// ---------------------------------------------------------------------------------------

async function renderOverview() {
  show(h("h1", {}, "Overview"), h("p", { class: "muted", id: "stats-wait" }, "computing statistics…"));
  let data = await api("/api/overview");
  while (!data.ready) {
    await new Promise((r) => setTimeout(r, 700));
    if (location.pathname !== "/") return;
    data = await api("/api/overview");
  }
  if (location.pathname !== "/") return;
  show(h("h1", {}, "Overview"), overviewSummary(data), overviewTables(data), distributions(data),
    levelGrid(data), rejectsSummary(data), labelSources(data), oddities(data));
}

function overviewSummary(d) {
  const corrected = Object.entries(d.corrected || {}).map(([k, v]) => `${k} ${v}`).join(", ");
  return h("p", { id: "summary" },
    `${fmt(d.records)} records, ${d.hours.toFixed(2)} hours; ${fmt(d.tokens.tokenized)} with BiCodec tokens; `,
    link("/rejects", `${fmt(d.rejects.reduce((a, r) => a + r.count, 0))} inputs rejected`),
    corrected ? `; labels corrected by hand: ${corrected}` : "",
    `; ${fmt(INFO.corrections)} corrections waiting in ${INFO.corrections_file}.`);
}

function overviewTables(d) {
  const boxes = ["corpus", "language", "gender", "split", "age", "emotion"].map((name) => {
    const rows = d.tables[name].map((r) => h("tr", {},
      h("td", {}, link(recordsUrl({ [name]: r.value }), r.value)),
      h("td", { class: "num" }, fmt(r.records)), h("td", { class: "num" }, r.hours.toFixed(3))));
    return h("div", { class: "card" }, h("h3", {}, `Hours by ${name}`),
      h("table", { class: "overview-table", "data-field": name },
        h("tr", {}, h("th", {}, name), h("th", { class: "num" }, "records"), h("th", { class: "num" }, "hours")),
        rows));
  });
  return h("div", { class: "grid" }, boxes);
}

function levelGrid(d) {
  const levels = INFO.choices.levels.concat(["unknown"]);
  const cell = {};
  for (const c of d.level_grid) cell[c.pitch_level + "|" + c.speed_level] = c.records;
  const head = h("tr", {}, h("th", {}, "pitch \\ speed"), levels.map((l) => h("th", {}, l)));
  const rows = levels.map((p) => h("tr", {}, h("th", {}, p), levels.map((sp) => {
    const n = cell[p + "|" + sp];
    return h("td", { class: "num" }, n ? link(recordsUrl({ pitch_level: p, speed_level: sp }), fmt(n)) : "");
  })));
  return [h("h2", {}, "Level grid (records)"), h("table", { id: "level-grid" }, head, rows)];
}

function distributions(d) {
  const pitch = histogramChart("Pitch by gender (Mel; dashed: level boundaries)", d.pitch.by_gender,
    d.pitch.boundaries, "mel");
  const speed = histogramChart("Speed by language (syllables/s; dashed: level boundaries)", d.speed.by_language,
    d.speed.boundaries, "sps");
  const dur = histogramChart("Duration (s)", { all: d.duration }, {}, "s");
  return [h("h2", {}, "Distributions"), h("div", { class: "grid" }, pitch, speed, dur)];
}

function histogramChart(title, groups, boundaries, unit) {
  const W = 420, H = 170, P = 28;
  const names = Object.keys(groups).filter((g) => groups[g].counts.length);
  const box = h("div", { class: "card" }, h("h3", {}, title));
  if (!names.length) { box.append(h("p", { class: "muted" }, "no values")); return box; }
  let lo = Infinity, hi = -Infinity, top = 1;
  for (const g of names) {
    const x = groups[g];
    lo = Math.min(lo, x.start); hi = Math.max(hi, x.start + x.width * x.counts.length);
    top = Math.max(top, ...x.counts);
  }
  for (const g of names) for (const b of boundaries[g] || []) { lo = Math.min(lo, b); hi = Math.max(hi, b); }
  const sx = (v) => P + (v - lo) / Math.max(hi - lo, 1e-9) * (W - 2 * P);
  const sy = (n) => H - P - n / top * (H - 2 * P);
  const svg = s("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: "hist" });
  names.forEach((g, i) => {
    const color = COLORS[g] || PALETTE[i % PALETTE.length];
    const x = groups[g];
    x.counts.forEach((n, k) => {
      if (!n) return;
      const x0 = sx(x.start + k * x.width), x1 = sx(x.start + (k + 1) * x.width);
      svg.append(s("rect", { x: x0, y: sy(n), width: Math.max(1, x1 - x0), height: H - P - sy(n),
        fill: color, "fill-opacity": 0.55 }));
    });
    for (const b of boundaries[g] || []) {
      svg.append(s("line", { x1: sx(b), x2: sx(b), y1: P / 2, y2: H - P, stroke: color, "stroke-dasharray": "4 3",
        class: "boundary" }));
    }
  });
  svg.append(s("line", { x1: P, x2: W - P, y1: H - P, y2: H - P, stroke: "#999" }));
  svg.append(s("text", { x: P, y: H - 8 }, fmt(lo, 1)), s("text", { x: W - P - 30, y: H - 8 }, fmt(hi, 1) + " " + unit));
  const legend = h("div", { class: "legend" }, names.map((g, i) =>
    h("span", { style: `color:${COLORS[g] || PALETTE[i % PALETTE.length]}` }, "■ " + g)));
  box.append(svg, legend);
  return box;
}

function rejectsSummary(d) {
  if (!d.rejects.length) return [h("h2", {}, "Rejects"), h("p", { class: "muted" }, "nothing was rejected")];
  const rows = d.rejects.map((r) => h("tr", {}, h("td", {}, r.stage),
    h("td", {}, link(`/rejects?stage=${encodeURIComponent(r.stage)}&reason=${encodeURIComponent(r.reason)}`, r.reason)),
    h("td", { class: "num" }, fmt(r.count))));
  return [h("h2", {}, "Rejects by reason"),
    h("table", { id: "rejects-by-reason" }, h("tr", {}, h("th", {}, "stage"), h("th", {}, "reason"),
      h("th", { class: "num" }, "count")), rows)];
}

function labelSources(d) {
  const rows = Object.entries(d.label_sources).map(([name, counts]) => h("tr", {}, h("td", {}, name),
    h("td", {}, Object.entries(counts).map(([src, n]) => `${src} ${fmt(n)}`).join(", "))));
  if (!rows.length) return null;
  return [h("h2", {}, "Where labels come from"), h("table", {}, rows)];
}

function oddities(d) {
  if (!d.oddities.length) return null;
  const rows = d.oddities.map((o) => h("tr", {}, h("td", {}, o.kind), h("td", {}, link(recordUrl(o.index), o.index)),
    h("td", {}, o.why), h("td", { class: "text" }, o.text || "")));
  return [h("h2", {}, "Worth listening to"), h("table", { class: "records" }, rows)];
}

// ---------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------

let FACETS = null;

async function renderRecords(params) {
  if (!FACETS) FACETS = await api("/api/facets");
  sessionStorage.setItem("voxbox-last-records", location.pathname + location.search);
  const form = filterForm(params);
  const result = h("div", { id: "results" }, h("p", { class: "muted" }, "loading…"));
  show(h("h1", {}, "Records"), form, result);
  const query = new URLSearchParams(params);
  if (!query.has("size")) query.set("size", "50");
  const data = await api("/api/records?" + query.toString());
  result.replaceChildren(...recordsTable(data, params));
}

function filterForm(params) {
  const form = h("form", { class: "filters", id: "filters" });
  for (const col of INFO.categorical) form.append(categoricalInput(col, params));
  form.append(h("label", {}, "text, index or speaker", h("input", { name: "q", value: params.get("q") || "", size: 18 })));
  form.append(h("label", {}, "tokens", selectOf("has_tokens", [["", "any"], ["1", "with"], ["0", "without"]],
    params.get("has_tokens") || "")));
  const main = INFO.numeric.filter((c) => MAIN_RANGES.includes(c) || c.includes("mos"));
  const more = INFO.numeric.filter((c) => !main.includes(c));
  for (const col of main) form.append(rangeInput(col, params));
  if (more.length) form.append(h("details", {}, h("summary", {}, "more ranges"), more.map((c) => rangeInput(c, params))));
  for (const keep of ["sort", "size"]) if (params.get(keep)) form.append(h("input", { type: "hidden", name: keep, value: params.get(keep) }));
  form.append(h("button", { type: "submit", id: "apply" }, "Apply"), link("/records", "reset"));
  form.addEventListener("submit", (ev) => { ev.preventDefault(); navigate(recordsUrl(formParams(form))); });
  form.addEventListener("change", (ev) => { if (ev.target.tagName === "SELECT") form.requestSubmit(); });
  return form;
}

function formParams(form) {
  const out = {};
  for (const [k, v] of new FormData(form).entries()) if (String(v).trim() !== "") out[k] = String(v).trim();
  return out;
}

function selectOf(name, options, current) {
  return h("select", { name }, options.map(([v, label]) => h("option", { value: v, selected: v === current }, label)));
}

function categoricalInput(col, params) {
  const facet = FACETS.categorical[col] || { values: [] };
  const current = params.get(col) || "";
  if (facet.values.length > 60 || facet.truncated) {
    const listId = "list-" + col;
    return h("label", {}, col, h("input", { name: col, value: current, list: listId, size: 12 }),
      h("datalist", { id: listId }, facet.values.slice(0, 500).map(([v]) => h("option", { value: v }))));
  }
  const options = [["", "any"]].concat(facet.values.map(([v, n]) => [v, `${v} (${fmt(n)})`]));
  if (current && !facet.values.some(([v]) => v === current)) options.push([current, current]);
  return h("label", {}, col, selectOf(col, options, current));
}

function rangeInput(col, params) {
  const r = FACETS.numeric[col];
  const hint = r ? `${fmt(r.min, 2)} … ${fmt(r.max, 2)}` : "";
  return h("label", { title: hint }, col, h("span", { class: "range" },
    h("input", { type: "number", step: "any", name: col + "_min", value: params.get(col + "_min") || "", placeholder: "min" }),
    h("input", { type: "number", step: "any", name: col + "_max", value: params.get(col + "_max") || "", placeholder: "max" })));
}

function recordsTable(data, params) {
  const sort = params.get("sort") || "index";
  const pages = Math.max(1, Math.ceil(data.total / data.size));
  const head = h("tr", {}, h("th", {}, ""), TABLE_COLUMNS.filter((c) => INFO.columns.includes(c)).map((c) => {
    const arrow = sort === c ? " ▲" : sort === "-" + c ? " ▼" : "";
    return h("th", { class: "sortable", "data-col": c, onclick: () => sortBy(params, c, sort) }, c + arrow);
  }));
  const rows = data.rows.map((r) => h("tr", { "data-index": r.index },
    h("td", {}, h("button", { class: "play secondary", title: "play", onclick: () => playRow(r.index) }, "▶"),
      INFO.synthesis ? [" ", link(`/synth?mode=clone&index=${encodeURIComponent(r.index)}`, "clone")] : null),
    TABLE_COLUMNS.filter((c) => INFO.columns.includes(c)).map((c) => cellFor(r, c))));
  const pager = h("div", { class: "pager" },
    h("button", { class: "secondary", disabled: data.page <= 0, onclick: () => goPage(params, data.page - 1) }, "‹ prev"),
    h("span", { id: "total" }, `${fmt(data.total)} records · page ${data.page + 1} of ${fmt(pages)}`),
    h("button", { class: "secondary", disabled: data.page + 1 >= pages, onclick: () => goPage(params, data.page + 1) }, "next ›"));
  return [pager, h("table", { class: "records", id: "records-table" }, head, rows)];
}

function cellFor(r, c) {
  if (c === "index") return h("td", {}, link(recordUrl(r.index), r.index));
  if (c === "gender" && r.gender) {
    const src = r.gender_source === "predicted" ? h("span", { class: "badge warn", title: `confidence ${fmt(r.gender_confidence, 2)}` }, "pred") : null;
    return h("td", {}, r.gender, src);
  }
  const v = r[c];
  return h("td", { class: typeof v === "number" ? "num" : c === "text" ? "text" : "" }, fmt(v, c === "pitch" ? 1 : 2));
}

function sortBy(params, col, current) {
  const p = new URLSearchParams(params);
  p.set("sort", current === col ? "-" + col : col);
  p.delete("page");
  navigate("/records?" + p.toString());
}

function goPage(params, page) {
  const p = new URLSearchParams(params);
  p.set("page", String(page));
  navigate("/records?" + p.toString());
}

function playRow(index) {
  const player = document.getElementById("row-player");
  player.src = apiRecord(index, "audio");
  player.play().catch(() => {});
}

// ---------------------------------------------------------------------------------------
// One record
// ---------------------------------------------------------------------------------------

async function renderRecord(index) {
  const v = await api(apiRecord(index));
  const r = v.record;
  const back = sessionStorage.getItem("voxbox-last-records") || "/records";
  show(h("p", {}, link(back, "‹ back to the records")), h("h1", {}, r.index),
    players(r, v), h("div", { id: "wave" }, h("p", { class: "muted" }, "drawing the waveform…")),
    correctionsBox(r, v.corrections), fieldsTables(v), tokensBox(r, v), exportBox(v.export));
  drawWave(index);
}

function players(r, v) {
  const orig = h("figure", {}, h("audio", { controls: true, preload: "metadata", id: "audio", src: apiRecord(r.index, "audio") }),
    h("figcaption", {}, `original (${v.audio_ext || "audio"} from the shard)`));
  const box = h("div", { class: "players" }, orig);
  if (INFO.reconstruction && r.global_tokens && r.global_tokens.length) {
    const recon = h("audio", { controls: true, preload: "none", id: "recon" });
    const button = h("button", { id: "reconstruct", onclick: () => {
      recon.src = apiRecord(r.index, "reconstruction"); recon.load(); button.disabled = true;
    } }, "BiCodec reconstruction");
    box.append(h("figure", {}, button, " ", recon, h("figcaption", {}, "decoded from the stored tokens")));
  }
  if (INFO.synthesis) box.append(link(`/synth?mode=clone&index=${encodeURIComponent(r.index)}`, "clone this voice →"));
  return box;
}

async function drawWave(index) {
  const box = document.getElementById("wave");
  let a;
  try { a = await api(apiRecord(index, "analysis")); } catch (e) { box.replaceChildren(failure(e)); return; }
  if (!box.isConnected) return;
  if (a.error) { box.replaceChildren(h("p", { class: "muted" }, `no waveform: ${a.error} (${a.detail})`)); return; }
  box.replaceChildren(waveSvg(a), h("div", { class: "legend muted" },
    h("span", {}, "waveform (16 kHz, normalised)"), h("span", { style: "color:#c2410c" }, "— pitch (Hz)"),
    h("span", {}, `grey: trimmed silence; speech ${a.speech_start.toFixed(2)}–${a.speech_end.toFixed(2)} s`),
    h("span", {}, `mean voiced F0 ${fmt(a.pitch.mean, 1)} Hz (${a.pitch.backend})`)));
}

function waveSvg(a) {
  const W = 900, H = 220, mid = 80, amp = 70, top = 165, ph = 50;
  const n = a.envelope.max.length;
  const sx = (t) => t / a.duration * W;
  const svg = s("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: "wave", id: "waveform" });
  svg.append(s("rect", { x: 0, y: 0, width: sx(a.speech_start), height: H, fill: "#e5e7eb", class: "trimmed" }),
    s("rect", { x: sx(a.speech_end), y: 0, width: W - sx(a.speech_end), height: H, fill: "#e5e7eb", class: "trimmed" }));
  let d = "";
  for (let i = 0; i < n; i++) {
    const x = (i / n * W).toFixed(1);
    d += `M${x},${(mid - a.envelope.max[i] * amp).toFixed(1)}V${(mid - a.envelope.min[i] * amp).toFixed(1)}`;
  }
  svg.append(s("path", { d, stroke: "#1f5f8b", "stroke-width": 1, fill: "none" }));
  svg.append(pitchPath(a, sx, top, ph));
  const head = s("line", { x1: 0, x2: 0, y1: 0, y2: H, stroke: "#111", id: "playhead" });
  svg.append(head);
  const audio = document.getElementById("audio");
  audio.addEventListener("timeupdate", () => { const x = sx(audio.currentTime); head.setAttribute("x1", x); head.setAttribute("x2", x); });
  svg.addEventListener("click", (ev) => {
    const rect = svg.getBoundingClientRect();
    audio.currentTime = (ev.clientX - rect.left) / rect.width * a.duration;
  });
  return svg;
}

function pitchPath(a, sx, top, ph) {
  const f0 = a.pitch.f0;
  const voiced = f0.filter((x) => x > 0);
  const g = s("g", { class: "pitch" });
  if (!voiced.length) return g;
  const lo = Math.min(...voiced), hi = Math.max(...voiced);
  const sy = (f) => top + ph - (f - lo) / Math.max(hi - lo, 1) * ph;
  let d = "", pen = false;
  f0.forEach((f, i) => {
    if (f <= 0) { pen = false; return; }
    const x = sx(a.pitch.offset + i * a.pitch.hop).toFixed(1);
    d += (pen ? "L" : "M") + x + "," + sy(f).toFixed(1);
    pen = true;
  });
  g.append(s("path", { d, stroke: "#c2410c", "stroke-width": 1.5, fill: "none" }),
    s("text", { x: 4, y: top + 8 }, `${hi.toFixed(0)} Hz`), s("text", { x: 4, y: top + ph }, `${lo.toFixed(0)} Hz`));
  return g;
}

function fieldsTables(v) {
  const r = v.record, prov = v.provenance;
  const corrected = (r.extra && r.extra.corrected) || {};
  const tables = v.groups.map((g) => [h("h3", {}, g.title), h("table", { class: "fields" },
    g.fields.map((f) => h("tr", { "data-field": f }, h("td", {}, f),
      h("td", {}, fmt(r[f]), corrected[f] ? h("span", { class: "badge" }, "corrected") : null),
      h("td", { class: "prov" }, prov[f] || ""))))]);
  const rest = [];
  if (r.null_reasons) rest.push(h("h3", {}, "Why some fields are null"), h("pre", {}, JSON.stringify(r.null_reasons, null, 1)));
  if (r.extra) rest.push(h("h3", {}, "extra"), h("pre", {}, JSON.stringify(r.extra, null, 1)));
  return [h("h2", {}, "Fields and where they came from"), h("div", { class: "grid" }, tables.map((t) => h("div", {}, t))), rest];
}

function tokensBox(r, v) {
  if (!r.global_tokens) return [h("h2", {}, "BiCodec tokens"), h("p", { class: "muted" }, "none (built without the tokenize stage)")];
  return [h("h2", {}, "BiCodec tokens"),
    h("p", {}, `${r.global_tokens.length} global tokens, ${fmt(v.semantic_count)} semantic tokens ` +
      `(${(v.semantic_count / Math.max(r.duration || 1, 1e-9)).toFixed(1)} per second)`),
    h("pre", {}, "global: " + r.global_tokens.join(" ") + "\nsemantic: " + r.semantic_tokens.join(" ") +
      (v.semantic_count > r.semantic_tokens.length ? " …" : ""))];
}

function exportBox(examples) {
  const items = examples.map((ex) => ex.skipped
    ? h("div", { class: "card" }, h("h3", {}, ex.task), h("p", { class: "muted" }, `not exported: ${ex.skipped}`))
    : h("div", { class: "card", "data-task": ex.task }, h("h3", {}, ex.task),
      h("div", {}, "prompt"), h("pre", { class: "prompt" }, ex.prompt),
      h("details", {}, h("summary", {}, `target (${ex.target.length.toLocaleString("en")} characters)`), h("pre", {}, ex.target))));
  return [h("h2", {}, "What `voxbox export sparktts` makes of it"), h("div", { class: "grid" }, items)];
}

// ---------------------------------------------------------------------------------------
// Corrections
// ---------------------------------------------------------------------------------------

function correctionsBox(r, list) {
  const field = selectOf("field", [["gender", "gender"], ["age", "age"], ["emotion", "emotion"], ["text", "text"]], "gender");
  const valueBox = h("span", { id: "value-box" });
  const status = h("span", { id: "correction-status" });
  const form = h("form", { class: "row card", id: "correction-form" },
    h("label", {}, "field ", field), h("label", {}, "right value ", valueBox),
    h("button", { type: "submit" }, "Save correction"), status);
  const setValue = () => valueBox.replaceChildren(valueInput(field.value, r[field.value]));
  field.addEventListener("change", setValue);
  setValue();
  const listBox = h("div", { id: "corrections-list" }, correctionsList(list));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    status.textContent = "saving…";
    status.className = "";
    try {
      const body = { index: r.index, field: field.value, new: form.elements.new.value, who: who() };
      await api("/api/corrections", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      const data = await api("/api/corrections?index=" + encodeURIComponent(r.index));
      listBox.replaceChildren(correctionsList(data.corrections));
      INFO.corrections += 1;
      status.textContent = `saved to ${data.file}`;
      status.className = "ok";
    } catch (e) { status.textContent = e.message; status.className = "error"; }
  });
  return [h("h2", {}, "Correct a label"), form, listBox];
}

function valueInput(name, current) {
  if (name === "text") return h("textarea", { name: "new", rows: 2, cols: 60 }, current || "");
  const choices = INFO.choices[name] || [];
  return selectOf("new", choices.map((c) => [c, c]), choices.includes(current) ? current : choices[0]);
}

function correctionsList(list) {
  if (!list.length) return h("p", { class: "muted" }, "no corrections of this record yet");
  return h("table", {}, h("tr", {}, ["when", "who", "field", "old", "new"].map((c) => h("th", {}, c))),
    list.map((c) => h("tr", { class: "correction" }, [c.when, c.who, c.field, fmt(c.old), c.new].map((x) => h("td", {}, x)))));
}

// ---------------------------------------------------------------------------------------
// Rejects
// ---------------------------------------------------------------------------------------

async function renderRejects(params) {
  const query = new URLSearchParams(params);
  const data = await api("/api/rejects?" + query.toString());
  const chips = h("p", { class: "chips" }, data.reasons.map((r) =>
    link(`/rejects?stage=${encodeURIComponent(r.stage)}&reason=${encodeURIComponent(r.reason)}`, `${r.stage}: ${r.reason} (${fmt(r.count)})`)));
  const form = h("form", { class: "filters" },
    h("label", {}, "stage", h("input", { name: "stage", value: params.get("stage") || "", size: 10 })),
    h("label", {}, "reason", h("input", { name: "reason", value: params.get("reason") || "", size: 16 })),
    h("label", {}, "path or index", h("input", { name: "q", value: params.get("q") || "" })),
    h("button", { type: "submit" }, "Apply"), link("/rejects", "all"));
  form.addEventListener("submit", (ev) => { ev.preventDefault(); navigate("/rejects?" + new URLSearchParams(formParams(form))); });
  const pages = Math.max(1, Math.ceil(data.total / data.size));
  const rows = data.rows.map((r) => h("tr", {}, h("td", { class: "num" }, r.line + 1), h("td", {}, r.stage), h("td", {}, r.reason),
    h("td", {}, r.path), h("td", {}, r.index || ""), h("td", {}, r.detail || ""),
    h("td", {}, r.playable ? h("button", { class: "play secondary", onclick: (ev) => playReject(ev, r.line) }, "▶") : "")));
  const pager = h("div", { class: "pager" },
    h("button", { class: "secondary", disabled: data.page <= 0, onclick: () => rejectPage(params, data.page - 1) }, "‹ prev"),
    h("span", {}, `${fmt(data.total)} rejects · page ${data.page + 1} of ${fmt(pages)}`),
    h("button", { class: "secondary", disabled: data.page + 1 >= pages, onclick: () => rejectPage(params, data.page + 1) }, "next ›"));
  show(h("h1", {}, "Rejects"), chips, form, pager,
    h("table", { id: "rejects-table" }, h("tr", {}, ["#", "stage", "reason", "path", "index", "detail", ""].map((c) => h("th", {}, c))), rows));
}

function rejectPage(params, page) {
  const p = new URLSearchParams(params);
  p.set("page", String(page));
  navigate("/rejects?" + p.toString());
}

function playReject(ev, line) {
  const cell = ev.target.parentElement;
  cell.replaceChildren(h("audio", { controls: true, autoplay: true, src: `/api/rejects/${line}/audio` }));
}

// ---------------------------------------------------------------------------------------
// Synthesis
// ---------------------------------------------------------------------------------------

async function renderSynth(params) {
  if (!INFO.synthesis) {
    show(h("h1", {}, "Synthesis"), h("p", {}, "Synthesis needs a Spark-TTS model folder with LLM/: restart with ",
      h("code", {}, "voxbox serve DIR --model-dir Spark-TTS-0.5B"), "."));
    return;
  }
  const mode = params.get("mode") === "control" ? "control" : "clone";
  const levels = INFO.choices.levels.map((l) => [l, l]);
  const form = h("form", { class: "stack card", id: "synth-form" },
    h("div", { class: "row" },
      h("label", {}, h("span", {}, h("input", { type: "radio", name: "mode", value: "clone", checked: mode === "clone" }), " clone a record's voice")),
      h("label", {}, h("span", {}, h("input", { type: "radio", name: "mode", value: "control", checked: mode === "control" }), " create a voice"))),
    h("label", { class: "clone-only" }, "record to clone (its audio and text are the prompt)",
      h("input", { name: "index", value: params.get("index") || "", size: 40 })),
    h("div", { class: "row control-only" },
      h("label", {}, "gender", selectOf("gender", [["female", "female"], ["male", "male"]], params.get("gender") || "female")),
      h("label", {}, "pitch", selectOf("pitch", levels, params.get("pitch") || "moderate")),
      h("label", {}, "speed", selectOf("speed", levels, params.get("speed") || "moderate"))),
    h("label", {}, "text to speak", h("textarea", { name: "text", rows: 2 }, params.get("text") || "The quick brown fox jumps over the lazy dog.")),
    h("div", { class: "row" },
      h("label", {}, "seed", h("input", { name: "seed", type: "number", value: params.get("seed") || "0" })),
      h("label", {}, h("span", {}, h("input", { type: "checkbox", name: "constrain", checked: params.get("constrain") === "1" }),
        " constrain (only well-formed outputs)"))),
    h("button", { type: "submit", id: "synthesize" }, "Synthesise"));
  const out = h("div", { id: "synth-result" });
  const toggle = () => {
    const m = form.elements.mode.value;
    for (const el of form.querySelectorAll(".clone-only")) el.hidden = m !== "clone";
    for (const el of form.querySelectorAll(".control-only")) el.hidden = m !== "control";
  };
  form.addEventListener("change", toggle);
  form.addEventListener("submit", (ev) => { ev.preventDefault(); synthesize(form, out); });
  show(h("h1", {}, "Synthesis"), h("p", { class: "muted" }, `model: ${INFO.model_dir}; at most ${fmt(INFO.max_new_tokens)} tokens`), form, out);
  toggle();
}

async function synthesize(form, out) {
  const f = form.elements;
  const body = { mode: f.mode.value, text: f.text.value, index: f.index.value.trim(), gender: f.gender.value,
    pitch: f.pitch.value, speed: f.speed.value, seed: f.seed.value, constrain: f.constrain.checked };
  const button = document.getElementById("synthesize");
  button.disabled = true;
  out.replaceChildren(h("p", { class: "muted" }, "synthesising…"));
  try {
    const r = await api("/api/synth", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    out.replaceChildren(synthResult(r));
  } catch (e) { out.replaceChildren(failure(e)); }
  button.disabled = false;
}

function synthResult(r) {
  const m = r.measured || {};
  const rows = [["gender", r.asked.gender, m.gender], ["pitch (Hz)", r.asked.pitch, m.pitch],
    ["pitch level", r.asked.pitch_level, m.pitch_level], ["speed (syllables/s)", r.asked.speed, m.speed],
    ["speed level", r.asked.speed_level, m.speed_level]];
  return h("div", { class: "card" },
    h("audio", { controls: true, id: "synth-audio", src: r.url, preload: "auto" }),
    h("p", {}, `${r.duration.toFixed(2)} s, ${fmt(r.generated_tokens)} tokens generated` + (r.finished ? "" : " (stopped at the token limit)")),
    h("table", { id: "asked-measured" }, h("tr", {}, h("th", {}, ""), h("th", {}, r.asked.reference ? "reference record" : "asked"),
      h("th", {}, "measured on the result")), rows.map(([k, a, b]) => h("tr", {}, h("td", {}, k), h("td", {}, fmt(a, 1)), h("td", {}, fmt(b, 1))))),
    m.null_reason ? h("p", { class: "muted" }, `not measured: ${m.null_reason}`) : null);
}

start().catch((e) => show(failure(e)));
