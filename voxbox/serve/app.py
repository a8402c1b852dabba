"""The HTTP side of ``voxbox serve``: a Starlette app with one static page and a JSON API.

Pages (``/``, ``/records``, ``/record/ID``, ``/rejects``, ``/synth``) all return the same
``index.html``; ``app.js`` draws them from the API and keeps the filter state in the URL.
Static files are read from the package once, at start, and served by name from memory:
no request path is ever joined to a folder. Audio is served only from the shards, by
record index (or, for a reject, by its line in ``rejects.jsonl``).

API (JSON unless said otherwise):

- ``GET /api/info``: dataset facts and which tabs are available
- ``GET /api/overview``: statistics (``{"ready": false}`` while they are computed)
- ``GET /api/facets``: values of the categorical columns, ranges of the numeric ones
- ``GET /api/records?gender=male&pitch_level=high&duration_min=2&q=word&sort=-pitch&page=0&size=50``
- ``GET /api/record/ID``, ``/api/record/ID/audio`` (the stored bytes), ``/analysis``,
  ``/reconstruction`` (WAV, with a model folder)
- ``POST /api/corrections`` ``{"index", "field", "new", "who"}``; ``GET /api/corrections?index=ID``
- ``GET /api/rejects?stage=&reason=&q=&page=``, ``GET /api/rejects/LINE/audio`` (WAV)
- ``POST /api/synth`` ``{"mode": "clone"|"control", "text", "index" | "gender","pitch","speed", "seed"}``;
  ``GET /api/synth/ID`` (WAV)
"""

from __future__ import annotations

import datetime as _dt
import re
from importlib import resources
from typing import Dict, List, Optional, Tuple

from voxbox.errors import VoxboxError
from voxbox.serve.state import ServeState, Settings

STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
PAGES = ("/", "/records", "/rejects", "/synth")
MAX_INDEX = 512
MAX_BODY = 64 * 1024
MAX_REJECT_AUDIO = 512 * 1024 * 1024


class NotFound(Exception):
    pass


def load_static() -> Dict[str, Tuple[bytes, str]]:
    """name -> (bytes, content type) of every file in voxbox/serve/static."""
    out = {}
    for item in resources.files("voxbox.serve").joinpath("static").iterdir():
        suffix = "." + item.name.rsplit(".", 1)[-1]
        if item.is_file() and suffix in STATIC_TYPES:
            out[item.name] = (item.read_bytes(), STATIC_TYPES[suffix])
    if "index.html" not in out:
        raise VoxboxError("voxbox/serve/static/index.html is missing from the installed package")
    return out


def create_app(settings: Settings, state: Optional[ServeState] = None, log=None):
    """The ASGI app (Starlette wrapped in :class:`voxbox.serve.security.Guard`)."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    from voxbox.serve.security import Guard

    state = state or ServeState(settings, log=log)
    static = load_static()
    h = Handlers(state, static)
    routes = [Route(p, h.page) for p in PAGES] + [
        Route("/record/{index:path}", h.page),
        Route("/static/{name}", h.static),
        Route("/favicon.ico", h.favicon),
        Route("/api/info", h.info),
        Route("/api/overview", h.overview),
        Route("/api/facets", h.facets),
        Route("/api/records", h.records),
        Route("/api/record/{index}", h.record),
        Route("/api/record/{index}/audio", h.audio),
        Route("/api/record/{index}/analysis", h.analysis),
        Route("/api/record/{index}/reconstruction", h.reconstruction),
        Route("/api/corrections", h.corrections_get, methods=["GET"]),
        Route("/api/corrections", h.corrections_post, methods=["POST"]),
        Route("/api/rejects", h.rejects),
        Route("/api/rejects/{line:int}/audio", h.reject_audio),
        Route("/api/synth", h.synth_post, methods=["POST"]),
        Route("/api/synth/{key}", h.synth_get),
    ]
    app = Starlette(routes=routes, exception_handlers={VoxboxError: _bad_request, NotFound: _not_found,
                                                        404: _not_found})
    app.state.voxbox = state
    return Guard(app, settings.host, settings.auth_token)


async def _bad_request(request, exc):
    from starlette.responses import JSONResponse

    return JSONResponse({"error": str(exc)}, status_code=400)


async def _not_found(request, exc):
    from starlette.responses import JSONResponse

    detail = str(exc) if isinstance(exc, NotFound) and str(exc) else "not found"
    return JSONResponse({"error": detail}, status_code=404)


def _json(data, status: int = 200):
    from starlette.responses import JSONResponse

    return JSONResponse(data, status_code=status, headers={"cache-control": "no-store"})


def bytes_response(request, data: bytes, media_type: str):
    """The bytes, honouring a single ``Range: bytes=a-b`` (what audio elements send to seek)."""
    from starlette.responses import Response

    headers = {"accept-ranges": "bytes", "cache-control": "private, max-age=300"}
    rng = request.headers.get("range")
    m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip()) if rng else None
    if rng and (m is None or m.group(1) == m.group(2) == ""):
        return Response(status_code=416, headers={"content-range": f"bytes */{len(data)}"})
    if m is None:
        return Response(data, media_type=media_type, headers=headers)
    if m.group(1) == "":
        start, end = max(0, len(data) - int(m.group(2))), len(data) - 1
    else:
        start = int(m.group(1))
        end = min(int(m.group(2)), len(data) - 1) if m.group(2) else len(data) - 1
    if start >= len(data) or start > end:
        return Response(status_code=416, headers={"content-range": f"bytes */{len(data)}"})
    headers["content-range"] = f"bytes {start}-{end}/{len(data)}"
    return Response(data[start:end + 1], status_code=206, media_type=media_type, headers=headers)


async def _body(request) -> dict:
    import json

    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise VoxboxError(f"request body larger than {MAX_BODY} bytes")
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise VoxboxError("request body is not JSON") from None
    if not isinstance(data, dict):
        raise VoxboxError("request body must be a JSON object")
    return data


class Handlers:
    """Route handlers; plain (sync) ones run in Starlette's thread pool."""

    def __init__(self, state: ServeState, static: Dict[str, Tuple[bytes, str]]):
        self.s = state
        self.static_files = static

    # -- page and assets ----------------------------------------------------------------
    def page(self, request):
        from starlette.responses import Response

        body, ctype = self.static_files["index.html"]
        return Response(body, media_type=ctype, headers={"cache-control": "no-store"})

    def static(self, request):
        from starlette.responses import Response

        item = self.static_files.get(request.path_params["name"])
        if item is None:
            raise NotFound("no such file")
        return Response(item[0], media_type=item[1], headers={"cache-control": "no-cache"})

    def favicon(self, request):
        from starlette.responses import Response

        body, ctype = self.static_files["favicon.svg"]
        return Response(body, media_type=ctype)

    # -- dataset --------------------------------------------------------------------------
    def info(self, request):
        ds, m = self.s.ds, self.s.models
        return _json({
            "name": ds.name, "path": str(ds.path), "records": len(ds), "hours": ds.hours,
            "formats": ds.formats, "audio_format": ds.audio_format,
            "rejects": ds.index.get("rejects", {}).get("count", 0),
            "reconstruction": m.has_codec, "synthesis": m.has_llm,
            "model_dir": str(m.model_dir) if m.model_dir else None,
            "corrections_file": str(self.s.corrections.path), "corrections": self.s.corrections.count,
            "default_who": self.s.default_who, "max_new_tokens": m.max_new_tokens,
            "columns": list(self.s.table.columns), "categorical": self.s.table.categorical,
            "numeric": self.s.table.numeric,
            "choices": _choices(),
        })

    def overview(self, request):
        from voxbox.serve.views import overview

        stats, error = self.s.stats.get()
        if error:
            raise VoxboxError(f"statistics failed: {error}")
        if stats is None:
            return _json({"ready": False})
        return _json({"ready": True, **overview(stats, self.s.ds)})

    def facets(self, request):
        return _json(self.s.table.facets())

    def records(self, request):
        q = self.s.table.parse(request.query_params.multi_items())
        return _json(self.s.table.page(q))

    # -- one record -----------------------------------------------------------------------
    def _locate(self, request) -> Tuple[str, int, int]:
        index = request.path_params["index"]
        if not index or len(index) > MAX_INDEX:
            raise NotFound("no such record")
        where = self.s.table.locate(index)
        if where is None:
            raise NotFound(f"no record {index!r} in this dataset")
        return index, where[0], where[1]

    def record(self, request):
        from voxbox.serve.views import record_view

        index, shard, row = self._locate(request)
        rec = self.s.store.record(shard, row)
        view = record_view(rec, self.s.pipeline, self.s.corrections.for_record(index),
                           self.s.corpus_roots.get(rec.corpus or "", []))
        _, ext = self.s.store.audio(shard, row)
        view["audio_ext"] = ext
        return _json(view)

    def audio(self, request):
        from voxbox.serve.analysis import to_wav
        from voxbox.serve.store import AUDIO_TYPES

        _index, shard, row = self._locate(request)
        data, ext = self.s.store.audio(shard, row)
        if not data:
            raise NotFound("this record's shard holds no audio")
        if ext in ("flac", "wav", "mp3", "ogg"):
            return bytes_response(request, data, AUDIO_TYPES[ext])
        try:
            return bytes_response(request, to_wav(data), "audio/wav")
        except Exception:  # noqa: BLE001 - libsndfile's own error type
            raise VoxboxError(f"stored {ext or 'audio'} cannot be decoded to play it") from None

    def analysis(self, request):
        from voxbox.serve.analysis import analyse

        index, shard, row = self._locate(request)
        data, _ext = self.s.store.audio(shard, row)
        backend = (self.s.table.row(index) or {}).get("pitch_backend")
        return _json(analyse(data, backend))

    def reconstruction(self, request):
        from voxbox.serve.analysis import wav_bytes
        from voxbox.serve.models import SR

        _index, shard, row = self._locate(request)
        rec = self.s.store.record(shard, row)
        wav = self.s.models.reconstruct(rec.global_tokens, rec.semantic_tokens)
        return bytes_response(request, wav_bytes(wav, SR), "audio/wav")

    # -- corrections ----------------------------------------------------------------------
    def corrections_get(self, request):
        index = request.query_params.get("index", "")
        return _json({"corrections": self.s.corrections.for_record(index), "file": str(self.s.corrections.path)})

    async def corrections_post(self, request):
        from starlette.concurrency import run_in_threadpool

        data = await _body(request)
        return _json(await run_in_threadpool(self._add_correction, data), status=201)

    def _add_correction(self, data: dict) -> dict:
        from voxbox.build.corrections import FIELDS, make_correction

        index, field = str(data.get("index") or ""), data.get("field")
        if field not in FIELDS:
            raise VoxboxError(f"cannot correct {field!r}: corrections apply to {', '.join(FIELDS)}")
        where = self.s.table.locate(index) if 0 < len(index) <= MAX_INDEX else None
        if where is None:
            raise NotFound(f"no record {index!r} in this dataset")
        earlier = self.s.corrections.latest(index).get(field)
        # The value the person saw: their last correction of it, else the dataset's.
        old = earlier["new"] if earlier else getattr(self.s.store.record(*where), field)
        when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        correction = make_correction(index, field, old, data.get("new"), data.get("who") or self.s.default_who, when)
        if correction["new"] == old:
            raise VoxboxError(f"{field} is already {old!r}")
        self.s.corrections.add(correction)
        return {"correction": correction, "file": str(self.s.corrections.path)}

    # -- rejects --------------------------------------------------------------------------
    def rejects(self, request):
        p = request.query_params
        page = _int_param(p.get("page"), 0, "page")
        size = _int_param(p.get("size"), 50, "size")
        if not 1 <= size <= 200:
            raise VoxboxError("size must be 1..200")
        out = self.s.table.rejects(p.get("stage") or None, p.get("reason") or None, p.get("q") or None,
                                   max(0, page), size)
        roots = self.s.corpus_roots
        for row in out["rows"]:
            row["playable"] = _reject_file(row, roots) is not None
        return _json(out)

    def reject_audio(self, request):
        from voxbox.serve.analysis import to_wav

        row = self.s.table.reject(request.path_params["line"])
        path = _reject_file(row, self.s.corpus_roots) if row else None
        if path is None:
            raise NotFound("this reject has no readable file")
        try:
            data = to_wav(path.read_bytes())
        except Exception:  # noqa: BLE001 - unreadable audio is the usual reason for a reject
            raise VoxboxError("the rejected file cannot be decoded as audio") from None
        return bytes_response(request, data, "audio/wav")

    # -- synthesis ------------------------------------------------------------------------
    async def synth_post(self, request):
        from starlette.concurrency import run_in_threadpool

        data = await _body(request)
        return _json(await run_in_threadpool(self._synth, data))

    def _synth(self, data: dict) -> dict:
        from voxbox.serve.analysis import wav_bytes
        from voxbox.serve.models import SR

        req, asked = self._synth_request(data)
        out = self.s.models.synthesize(req)
        key = self.s.synth.put(wav_bytes(out.pop("wav"), SR))
        return {"id": key, "url": f"/api/synth/{key}", "asked": asked, **out}

    def _synth_request(self, data: dict):
        from voxbox.serve.models import MAX_SYNTH_TEXT, SynthRequest

        text = " ".join(str(data.get("text") or "").split())
        if not text or len(text) > MAX_SYNTH_TEXT:
            raise VoxboxError(f"give a text of 1..{MAX_SYNTH_TEXT} characters to speak")
        seed = data.get("seed")
        seed = None if seed in (None, "") else _int_param(str(seed), 0, "seed")
        common = dict(text=text, seed=seed, constrain=bool(data.get("constrain")))
        if data.get("mode") == "clone":
            return self._clone_request(str(data.get("index") or ""), common)
        if data.get("mode") != "control":
            raise VoxboxError("mode must be clone or control")
        from spark_tokenize import prompts as P

        gender, pitch, speed = data.get("gender"), data.get("pitch"), data.get("speed")
        if gender not in P.GENDER_MAP or pitch not in P.LEVELS_MAP or speed not in P.LEVELS_MAP:
            raise VoxboxError(f"control needs gender ({', '.join(P.GENDER_MAP)}) and pitch and speed levels "
                              f"({', '.join(P.LEVELS)})")
        asked = {"gender": gender, "pitch_level": pitch, "speed_level": speed}
        return SynthRequest(mode="control", gender=gender, pitch=pitch, speed=speed, **common), asked

    def _clone_request(self, index: str, common: dict):
        from voxbox.dataset.reader import decode_audio
        from voxbox.serve.models import SynthRequest

        where = self.s.table.locate(index) if 0 < len(index) <= MAX_INDEX else None
        if where is None:
            raise NotFound(f"no record {index!r} to clone")
        rec = self.s.store.record(*where)
        data, _ext = self.s.store.audio(*where)
        try:
            samples, sr = decode_audio(data)
        except Exception:  # noqa: BLE001
            raise VoxboxError(f"{index}: stored audio cannot be decoded") from None
        asked = {"reference": index, "gender": rec.gender, "pitch": rec.pitch, "pitch_level": rec.pitch_level,
                 "speed": rec.speed, "speed_level": rec.speed_level}
        req = SynthRequest(mode="clone", prompt_audio=samples[:, 0], prompt_sr=sr, prompt_text=rec.text,
                           gender=rec.gender, **common)
        return req, asked

    def synth_get(self, request):
        data = self.s.synth.get(request.path_params["key"])
        if data is None:
            raise NotFound("no such synthesis result (only the latest are kept)")
        return bytes_response(request, data, "audio/wav")


def _int_param(value: Optional[str], default: int, name: str) -> int:
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise VoxboxError(f"{name}: not a whole number: {value!r}") from None


def _choices() -> dict:
    from voxbox.build.corrections import CHOICES
    from voxbox.record import LEVELS

    return {**{k: list(v) for k, v in CHOICES.items()}, "levels": list(LEVELS)}


def _reject_file(row: Optional[dict], roots: Dict[str, List[str]]):
    """The rejected file, when it is a regular file inside one of its corpus's roots whose
    header soundfile can read (else None).

    The path comes from the dataset's own rejects.jsonl, never from the request; the
    roots from its provenance.json (a reject's index starts with its corpus name).
    """
    from pathlib import Path

    import soundfile as sf

    if not row or not row.get("path"):
        return None
    corpus = row["index"].rsplit("_", 1)[0] if row.get("index") else None
    candidates = roots.get(corpus, []) if corpus else [r for rs in roots.values() for r in rs]
    for root in candidates:
        base = Path(root).resolve()
        p = (base / row["path"]).resolve()
        if base not in p.parents or not p.is_file() or p.stat().st_size > MAX_REJECT_AUDIO:
            continue
        try:
            sf.info(str(p))
        except Exception:  # noqa: BLE001 - libsndfile's error type; unreadable is not playable
            return None
        return p
    return None
