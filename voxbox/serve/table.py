"""The records table behind ``voxbox serve``: filtering, sorting and paging with DuckDB.

Querying the Parquet shards in place costs about a second per page on a million records
(a build writes 100-row row groups, so a scan touches ten thousand of them). The table
is therefore copied once into a DuckDB database file: the scalar columns of every
record (no audio, no tokens, no syllables), plus where the record lives (``shard``,
``row``) and ``rid`` (shard * 2**32 + row, which is index order). The file is
compressed (a million records take ~40 MB) and keyed by the dataset's ``index.json``,
so a restart reuses it; it is rebuilt when the dataset changes.

A page is two small queries and a count: the ``rid`` of the 50 rows in order (sorting
narrow columns only), then those rows' columns (through an index on ``rid``), then the
number of matching rows.

Filters come from URL parameters (see :class:`Query`); every value reaches DuckDB as a
bound parameter and every column name is checked against the table, never pasted in.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from voxbox.errors import MissingExtraError, VoxboxError

TABLE_VERSION = 3  # bump when the table's columns change, so old caches are rebuilt
# Columns the table leaves out: audio and long or nested values (read from the shard
# when one record is opened).
SKIPPED = frozenset(("audio", "syllables", "null_reasons", "extra", "global_tokens", "semantic_tokens",
                     "wav_path", "source_path", "embedding"))  # embedding: float16, which DuckDB cannot read
# Categorical columns offered as filters (those present in the table).
CATEGORICAL = ("corpus", "split", "language", "speaker", "gender", "gender_source", "age", "age_source",
               "emotion", "emotion_source", "pitch_level", "pitch_std_level", "speed_level", "pitch_backend",
               "license")
UNKNOWN = "unknown"  # filter value for missing labels, as the overview counts them
MAX_PAGE = 200
MAX_FACET_VALUES = 500
MAX_TEXT_QUERY = 200
RESERVED = frozenset(("q", "sort", "page", "size", "has_tokens"))


def _duckdb():
    try:
        import duckdb
    except ImportError:
        raise MissingExtraError("duckdb", "serve") from None
    return duckdb


def cache_key(dataset_dir: Path) -> str:
    """Names the table of one dataset state: its real path and its index.json bytes."""
    h = hashlib.sha256(f"voxbox-serve-table/{TABLE_VERSION}\0{dataset_dir.resolve()}\0".encode())
    h.update((dataset_dir / "index.json").read_bytes())
    return h.hexdigest()[:24]


@dataclass
class Query:
    """One page request: ``filters`` column -> values (OR within a column), ``ranges``
    column -> (low, high), ``text`` (substring of the transcript, or an exact index or
    speaker), ``sort`` (column, ``-`` prefix for descending), ``page``/``size``."""

    filters: Dict[str, List[str]] = field(default_factory=dict)
    ranges: Dict[str, Tuple[Optional[float], Optional[float]]] = field(default_factory=dict)
    text: Optional[str] = None
    has_tokens: Optional[bool] = None
    sort: str = "index"
    page: int = 0
    size: int = 50


class RecordTable:
    """The DuckDB copy of a built dataset's records (and its rejects)."""

    def __init__(self, ds, table_dir: Optional[Path] = None, log=None):
        self.ds = ds
        self._tmp = None
        if table_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="voxbox-serve-")
            table_dir = Path(self._tmp.name)
        table_dir = Path(table_dir)
        try:
            table_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise VoxboxError(f"{table_dir}: cannot create the table folder ({e.strerror})") from None
        self.path = table_dir / f"{cache_key(ds.path)}.duckdb"
        if not self.path.exists():
            _build_file(ds, self.path, log)
        self._con = _duckdb().connect(str(self.path), read_only=True)
        self._lock = threading.Lock()
        self.columns = self._describe()
        self.numeric = [c for c, t in self.columns.items() if _is_numeric(t) and c not in ("rid", "shard", "row")]
        self.categorical = [c for c in CATEGORICAL if c in self.columns]
        self._facets = None

    # -- connections ------------------------------------------------------------------
    def cursor(self):
        """A cursor for one request (DuckDB cursors are per thread)."""
        with self._lock:
            return self._con.cursor()

    def close(self) -> None:
        self._con.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def _describe(self) -> Dict[str, str]:
        rows = self.cursor().execute("SELECT column_name, data_type FROM duckdb_columns() "
                                     "WHERE table_name = 'records' ORDER BY column_index").fetchall()
        return {name: dtype for name, dtype in rows}

    # -- facts --------------------------------------------------------------------------
    def facets(self) -> dict:
        """Values (with counts) of each categorical column and the range of each numeric one."""
        if self._facets is None:
            cur = self.cursor()
            cats = {}
            for col in self.categorical:
                rows = cur.execute(f'SELECT "{col}", count(*) AS n FROM records GROUP BY 1 ORDER BY n DESC, 1 '
                                   f"LIMIT {MAX_FACET_VALUES + 1}").fetchall()
                cats[col] = {"values": [[UNKNOWN if v is None else str(v), n] for v, n in rows[:MAX_FACET_VALUES]],
                             "truncated": len(rows) > MAX_FACET_VALUES}
            nums = {}
            for col in self.numeric:
                lo, hi, n = cur.execute(f'SELECT min("{col}"), max("{col}"), count("{col}") FROM records').fetchone()
                if n:
                    nums[col] = {"min": _num(lo), "max": _num(hi), "count": n}
            self._facets = {"categorical": cats, "numeric": nums}
        return self._facets

    def locate(self, index: str) -> Optional[Tuple[int, int]]:
        """(shard, row) of a record, or None."""
        row = self.cursor().execute("SELECT shard, row FROM records WHERE index = ? LIMIT 1", [index]).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    def row(self, index: str) -> Optional[dict]:
        cur = self.cursor()
        res = cur.execute("SELECT * FROM records WHERE index = ? LIMIT 1", [index])
        names = [d[0] for d in res.description]
        got = res.fetchone()
        return None if got is None else _clean_row(dict(zip(names, got)))

    # -- queries -----------------------------------------------------------------------
    def parse(self, params: Iterable[Tuple[str, str]]) -> Query:
        """A :class:`Query` from URL parameters; unknown names are a VoxboxError."""
        q = Query()
        for key, value in params:
            if key in RESERVED:
                _reserved(q, key, value, self.columns)
            elif key in self.categorical:
                if value != "":
                    q.filters.setdefault(key, []).append(value)
            elif key.endswith(("_min", "_max")) and key[:-4] in self.numeric:
                if value.strip() != "":
                    lo, hi = q.ranges.get(key[:-4], (None, None))
                    x = _float(key, value)
                    q.ranges[key[:-4]] = (x, hi) if key.endswith("_min") else (lo, x)
            else:
                raise VoxboxError(f"unknown filter {key!r}")
        return q

    def where(self, q: Query) -> Tuple[str, list]:
        parts, args = [], []
        for col, values in sorted(q.filters.items()):
            ors = []
            for v in values:
                if v == UNKNOWN:
                    ors.append(f'"{col}" IS NULL OR "{col}" = ?')
                else:
                    ors.append(f'"{col}" = ?')
                args.append(v)
            parts.append("(" + " OR ".join(ors) + ")")
        for col, (lo, hi) in sorted(q.ranges.items()):
            if lo is not None:
                parts.append(f'"{col}" >= ?')
                args.append(lo)
            if hi is not None:
                parts.append(f'"{col}" <= ?')
                args.append(hi)
        if q.text:
            parts.append("(contains(lower(text), lower(?)) OR index = ? OR speaker = ?)")
            args += [q.text, q.text, q.text]
        if q.has_tokens is not None:
            parts.append("has_tokens = ?")
            args.append(q.has_tokens)
        return (" WHERE " + " AND ".join(parts)) if parts else "", args

    def page(self, q: Query) -> dict:
        """``{"total", "page", "size", "sort", "rows"}`` for one query."""
        cur = self.cursor()
        where, args = self.where(q)
        col, desc = q.sort.lstrip("-"), q.sort.startswith("-")
        order = f'"{col}" {"DESC" if desc else "ASC"} NULLS LAST, rid'
        # A text search scans every transcript: count in the same pass (a window count)
        # instead of a second scan. Other filters are cheap to count apart, and cheaper so.
        counted = ", count(*) OVER ()" if q.text else ""
        hits = cur.execute(f"SELECT rid{counted} FROM records{where} ORDER BY {order} LIMIT ? OFFSET ?",
                           args + [q.size, q.page * q.size]).fetchall()
        rows = self._rows([h[0] for h in hits], cur)
        if counted and hits:
            total = hits[0][1]
        else:
            total = cur.execute(f"SELECT count(*) FROM records{where}", args).fetchone()[0]
        return {"total": int(total), "page": q.page, "size": q.size, "sort": q.sort, "rows": rows}

    def _rows(self, rids: List[int], cur) -> List[dict]:
        """The rows of these rids, in this order (an index lookup each)."""
        if not rids:
            return []
        res = cur.execute("SELECT * FROM records WHERE rid = ANY(?::BIGINT[])", [rids])
        names = [d[0] for d in res.description]
        by_rid = {}
        for values in res.fetchall():
            d = dict(zip(names, values))
            by_rid[d["rid"]] = _clean_row(d)
        return [by_rid[r] for r in rids]

    # -- rejects -----------------------------------------------------------------------
    def rejects(self, stage: Optional[str], reason: Optional[str], text: Optional[str], page: int,
                size: int) -> dict:
        parts, args = [], []
        for col, v in (("stage", stage), ("reason", reason)):
            if v:
                parts.append(f"{col} = ?")
                args.append(v)
        if text:
            parts.append("(contains(lower(path), lower(?)) OR index = ?)")
            args += [text, text]
        where = (" WHERE " + " AND ".join(parts)) if parts else ""
        cur = self.cursor()
        res = cur.execute(f"SELECT * FROM rejects{where} ORDER BY line LIMIT ? OFFSET ?", args + [size, page * size])
        names = [d[0] for d in res.description]
        rows = [dict(zip(names, r)) for r in res.fetchall()]
        total = cur.execute(f"SELECT count(*) FROM rejects{where}", args).fetchone()[0]
        counts = cur.execute("SELECT stage, reason, count(*) FROM rejects GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2").fetchall()
        return {"total": int(total), "page": page, "size": size, "rows": rows,
                "reasons": [{"stage": s, "reason": r, "count": n} for s, r, n in counts]}

    def reject(self, line: int) -> Optional[dict]:
        res = self.cursor().execute("SELECT * FROM rejects WHERE line = ?", [line])
        names = [d[0] for d in res.description]
        got = res.fetchone()
        return None if got is None else dict(zip(names, got))


def _reserved(q: Query, key: str, value: str, columns: Dict[str, str]) -> None:
    if key == "q":
        q.text = value.strip()[:MAX_TEXT_QUERY] or None
    elif key == "sort":
        col = value.lstrip("-")
        if col not in columns or col in ("rid", "shard", "row"):
            raise VoxboxError(f"cannot sort by {col!r}")
        q.sort = value if value else "index"
    elif key == "has_tokens":
        q.has_tokens = None if value == "" else value in ("1", "true", "yes")
    else:
        n = _int(key, value)
        if key == "page":
            q.page = max(0, n)
        else:
            if not 1 <= n <= MAX_PAGE:
                raise VoxboxError(f"size must be 1..{MAX_PAGE}, got {n}")
            q.size = n


def _int(key: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise VoxboxError(f"{key}: not a whole number: {value!r}") from None


def _float(key: str, value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise VoxboxError(f"{key}: not a number: {value!r}") from None
    if x != x or x in (float("inf"), float("-inf")):
        raise VoxboxError(f"{key}: not a finite number: {value!r}")
    return x


def _is_numeric(dtype: str) -> bool:
    return dtype.upper() in ("DOUBLE", "FLOAT", "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "UBIGINT", "UINTEGER",
                             "HUGEINT", "REAL", "DECIMAL")


def _num(x):
    return None if x is None else (int(x) if isinstance(x, int) else float(x))


def _clean_row(d: dict) -> dict:
    """JSON-safe: NaN -> None, drop the table's own bookkeeping columns."""
    out = {}
    for k, v in d.items():
        if k in ("shard", "row"):
            continue
        if isinstance(v, float) and v != v:
            v = None
        out[k] = v
    return out


# ------------------------------------------------------------------------------------
# Building the table file
# ------------------------------------------------------------------------------------

def _select_list(schema_names: Sequence[str]) -> str:
    cols = [f'"{n}"' for n in schema_names if n not in SKIPPED]
    tokens = ("semantic_tokens IS NOT NULL AND len(semantic_tokens) > 0" if "semantic_tokens" in schema_names
              else "false")
    return ", ".join(cols + [f"({tokens}) AS has_tokens"])


def _build_file(ds, path: Path, log=None) -> None:
    """Write the table file under a temporary name, then rename it into place."""
    from voxbox.progress import Progress

    duckdb = _duckdb()
    tmp = path.with_name(path.name + f".{os.getpid()}.partial")
    tmp.unlink(missing_ok=True)
    if log:
        log(f"indexing {len(ds):,} records of {ds.path} for queries (once; kept in {path.parent})")
    con = duckdb.connect(str(tmp))
    try:
        created = False
        with Progress("index records", total=len(ds.shards), unit="shard") as bar:
            for shard, source, names in _shard_sources(ds):
                with source as rel:
                    verb = "INSERT INTO records" if created else "CREATE TABLE records AS"
                    con.execute(f"{verb} SELECT ({shard}::BIGINT << 32) + row AS rid, {shard}::INTEGER AS shard, "
                                f"row::INTEGER AS row, {_select_list(names)} FROM {rel(con)}")
                    created = True
                bar.update(1)
        # Point lookups: a page fetches its 50 rows by rid, a record view finds its row by index;
        # without these each is a scan of the whole table (~150 ms on a million records).
        con.execute("CREATE UNIQUE INDEX records_rid ON records (rid)")
        con.execute('CREATE INDEX records_index ON records ("index")')
        _load_rejects(con, ds)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(tmp, path)


class _ParquetShard:
    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        return lambda con: (f"(SELECT *, file_row_number AS row FROM "
                            f"read_parquet({_sql_string(str(self.path))}, file_row_number=true))")

    def __exit__(self, *exc):
        return False


class _ArrowShard:
    """A WebDataset shard's records as an Arrow table registered with DuckDB."""

    def __init__(self, table, name: str):
        # DuckDB cannot read a float16 column at all: the (skipped) embedding goes first.
        self.table = table.drop_columns([c for c in table.column_names if c == "embedding"])
        self.name = name
        self._con = None

    def __enter__(self):
        def rel(con):
            self._con = con
            con.register(self.name, self.table)
            return f"(SELECT *, row_number() OVER () - 1 AS row FROM {self.name})"
        return rel

    def __exit__(self, *exc):
        if self._con is not None:
            self._con.unregister(self.name)
        return False


def _shard_sources(ds):
    """(shard number, a context giving a DuckDB relation of its rows, its column names) per
    shard; a dataset without shards gives one empty relation, so the table still exists."""
    import pyarrow as pa

    from voxbox.manifest import _arrow_schema
    from voxbox.serve.store import checked_shard_files

    if not ds.shards:
        empty = pa.Table.from_pylist([], schema=_arrow_schema())
        yield 0, _ArrowShard(empty, "no_shards"), empty.schema.names
        return
    if "parquet" in ds.formats:
        import pyarrow.parquet as pq

        for k, path in enumerate(checked_shard_files(ds, "parquet")):
            names = pq.ParquetFile(str(path)).schema_arrow.names
            yield k, _ParquetShard(path), names
    else:
        for k, path in enumerate(checked_shard_files(ds, "webdataset")):
            table = _tar_records(path)
            yield k, _ArrowShard(table, f"shard_{k}"), table.schema.names


def _tar_records(path: Path):
    """The records of one WebDataset shard, in sample order, as an Arrow table (no audio)."""
    import pyarrow as pa

    from voxbox.manifest import _arrow_schema, _to_arrow_row
    from voxbox.shards.webdataset import iter_tar_samples, record_from_json, split_sample

    rows = []
    for key, members in iter_tar_samples(path):
        try:
            rec_json, _audio, _ext = split_sample(members)
        except ValueError as e:
            raise VoxboxError(f"{path}: {key}: {e}") from None
        rows.append(_to_arrow_row(record_from_json(rec_json)))
    return pa.Table.from_pylist(rows, schema=_arrow_schema())


def _load_rejects(con, ds) -> None:
    import pyarrow as pa

    rows = [{"line": i, **r.to_dict()} for i, r in enumerate(ds.rejects())]
    schema = pa.schema([pa.field("line", pa.int64())] + [pa.field(k, pa.string())
                                                        for k in ("stage", "path", "reason", "index", "detail")])
    con.register("rejects_in", pa.Table.from_pylist(rows, schema=schema))
    con.execute("CREATE TABLE rejects AS SELECT * FROM rejects_in")
    con.unregister("rejects_in")


def _sql_string(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"

