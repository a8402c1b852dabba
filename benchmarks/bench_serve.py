"""`voxbox serve`: a filtered, sorted 50-row page of a 1,000,000-record dataset, over HTTP.

The dataset is synthetic (tests/synthetic_records.py: real Parquet shards in the build's
layout, 100-row row groups, no audio). The real command serves it (`python -m voxbox serve`
in a subprocess); each page is a real HTTP request answered with JSON. Side by side, in
the same run, the same queries answered without the serve table:

- DuckDB reading the Parquet shards in place (what the table saves);
- pyarrow.dataset: filter, sort and slice over the shards (the plain-Python route).

Figures: the one-off table build (startup, cached between runs), then per query the
median, p95 and max of the page latency over ``--repeat`` requests.

    python benchmarks/bench_serve.py --records 1000000 --repeat 20
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qsl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

from harness import Harness, Measurement  # noqa: E402

QUERIES = [
    "gender=female&pitch_level=high&sort=-pitch&size=50",
    "gender=male&pitch_level=low&speed_level=moderate&duration_min=2&duration_max=8&sort=speed&size=50",
    "corpus=vctk&gender_source=predicted&gender_confidence_max=0.7&sort=-duration&size=50&page=3",
    "q=garden%20river&sort=-duration&size=50",
    "emotion=HAPPY&age=Elderly&sort=-loudness&size=50&page=20",
]


def latencies(fn, repeat: int) -> list:
    out = []
    fn()  # warm: the first request of a kind pays for caches, not for the query
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def summary(label: str, xs: list) -> Measurement:
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
    m = Measurement(label, statistics.median(xs), items=len(xs),
                    extra={"median_ms": round(1000 * statistics.median(xs), 1), "p95_ms": round(1000 * p95, 1),
                           "max_ms": round(1000 * xs[-1], 1)})
    print(f"  {label}: median {m.extra['median_ms']} ms, p95 {m.extra['p95_ms']} ms, max {m.extra['max_ms']} ms",
          file=sys.stderr)
    return m


def duckdb_in_place(files, query: str):
    """The same page with DuckDB over the Parquet files (no serve table)."""
    import duckdb

    from voxbox.serve.table import RecordTable

    con = duckdb.connect()
    listing = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
    con.execute(f"CREATE VIEW records AS SELECT * FROM read_parquet([{listing}])")
    fake = RecordTable.__new__(RecordTable)  # reuse parse()/where() on the view's columns
    fake.columns = {r[0]: r[1] for r in con.execute("DESCRIBE records").fetchall()}
    fake.numeric = [c for c, t in fake.columns.items() if t in ("DOUBLE", "BIGINT")]
    fake.categorical = [c for c in ("corpus", "gender", "gender_source", "pitch_level", "speed_level", "emotion",
                                    "age") if c in fake.columns]
    q = fake.parse(parse_qsl(query))
    where, args = fake.where(q)
    col, desc = q.sort.lstrip("-"), q.sort.startswith("-")
    cols = "index, gender, pitch, pitch_level, speed, speed_level, duration, text"

    def run():
        con.execute(f"SELECT {cols} FROM records{where} ORDER BY \"{col}\" {'DESC' if desc else 'ASC'} NULLS LAST, "
                    f"index LIMIT ? OFFSET ?", args + [q.size, q.page * q.size]).fetchall()
        con.execute(f"SELECT count(*) FROM records{where}", args).fetchone()
    return run


def pyarrow_scan(files, query: str):
    """The same page with pyarrow.dataset: filter, sort, slice (text search left out)."""
    import pyarrow.compute as pc
    import pyarrow.dataset as pads

    ds = pads.dataset([str(f) for f in files], format="parquet")
    params = dict(parse_qsl(query))
    expr = None
    for k, v in params.items():
        if k in ("sort", "size", "page", "q"):
            continue
        if k.endswith("_min"):
            e = pc.field(k[:-4]) >= float(v)
        elif k.endswith("_max"):
            e = pc.field(k[:-4]) <= float(v)
        else:
            e = pc.field(k) == v
        expr = e if expr is None else expr & e
    sort = params.get("sort", "index")
    key = (sort.lstrip("-"), "descending" if sort.startswith("-") else "ascending")
    size, page = int(params.get("size", 50)), int(params.get("page", 0))
    cols = ["index", "gender", "pitch", "pitch_level", "speed", "speed_level", "duration", "text", "loudness"]

    def run():
        t = ds.to_table(columns=sorted(set(cols) | {key[0]}), filter=expr)
        t.sort_by([key, ("index", "ascending")]).slice(page * size, size).to_pylist()
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--shards", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--baseline-repeat", type=int, default=3)
    ap.add_argument("--work", type=Path, default=None, help="Keep the dataset here (default: a temp folder).")
    args = ap.parse_args()

    import httpx

    from serve_helpers import Server
    from synthetic_records import write_synthetic_dataset
    from voxbox.dataset import open_dataset

    tmp = tempfile.TemporaryDirectory(prefix="bench-serve-")
    work = args.work or Path(tmp.name)
    ds_dir = work / f"synthetic-{args.records}"
    h = Harness("serve")
    if not (ds_dir / "index.json").exists():
        t0 = time.perf_counter()
        write_synthetic_dataset(ds_dir, args.records, shards=args.shards)
        print(f"  generated {args.records:,} records in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    files = sorted((ds_dir / "parquet").glob("*.parquet"))
    cache = work / "cache"
    shutil.rmtree(cache, ignore_errors=True)  # measure the first start, table build included
    t0 = time.perf_counter()
    srv = Server(str(ds_dir), "--table-dir", str(cache), timeout=1800)
    h.add(Measurement("serve start, table build (once)", time.perf_counter() - t0, items=args.records))
    try:
        with httpx.Client(base_url=srv.url, timeout=60) as client:
            for i, query in enumerate(QUERIES):
                total = client.get("/api/records?" + query).json()["total"]
                served = summary(f"q{i} serve HTTP page ({total:,} match)",
                                 latencies(lambda: client.get("/api/records?" + query).raise_for_status(), args.repeat))
                h.add(served)
                duck = summary(f"q{i} DuckDB on the shards", latencies(duckdb_in_place(files, query), args.baseline_repeat))
                h.add(duck)
                h.ratio(f"q{i} DuckDB-on-shards / serve", duck, served)
                if "q=" not in query:
                    arrow = summary(f"q{i} pyarrow.dataset scan", latencies(pyarrow_scan(files, query), args.baseline_repeat))
                    h.add(arrow)
                    h.ratio(f"q{i} pyarrow / serve", arrow, served)
        srv.stop()
        t0 = time.perf_counter()
        srv = Server(str(ds_dir), "--table-dir", str(cache), timeout=600)
        h.add(Measurement("serve restart (table cached)", time.perf_counter() - t0))
    finally:
        srv.stop()
    h.note(f"{len(open_dataset(ds_dir)):,} records in {len(files)} Parquet shards, 100-row row groups; "
           f"{args.repeat} requests per query after one warm-up")
    h.report()
    tmp.cleanup()


if __name__ == "__main__":
    main()
