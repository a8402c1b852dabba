"""``voxbox export lhotse``: a built dataset as lhotse manifests, so every lhotse sampler,
dataset class and recipe tool works on it.

One cut per record: a ``MonoCut`` over the whole recording (id = the record's ``index``)
with one supervision carrying ``text``, ``speaker``, ``language`` and ``gender``, and in
its ``custom`` every other non-null record field: the VoxBox fields (pitch, speed, levels,
value tokens, age, emotion ...), ``utt_id``, label provenance, ``null_reasons``, and the
BiCodec ``global_tokens`` / ``semantic_tokens``. One folder per split (``train``,
``validation``, ``test``), in one of two formats:

- ``shar`` (default): Lhotse Shar, tar-based like voxbox's own shards and as streamable:
  ``cuts.000000.jsonl.gz`` + ``recording.000000.tar`` per built shard, the audio bytes
  copied from the shards unchanged. Read with ``CutSet.from_shar(in_dir=OUT/test)``.
- ``jsonl``: ``recordings.jsonl.gz``, ``supervisions.jsonl.gz`` and ``cuts.jsonl.gz``,
  with the audio written to ``OUT/audio/<split>/<index>.<ext>`` and referenced by absolute
  path (as lhotse's recipes do). Read with ``CutSet.from_file(OUT/test/cuts.jsonl.gz)``.

The manifests are written with fixed gzip headers, so the same folder gives the same
bytes. Needs lhotse: ``pip install 'voxbox[lhotse]'``.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Dict, Iterator, Optional, Tuple, Union

from voxbox.errors import VoxboxError

FORMATS = ("shar", "jsonl")
SUMMARY_NAME = "summary.json"
# Record fields the supervision itself carries (the rest go to custom).
_SUPERVISION_FIELDS = ("text", "speaker", "language", "gender")
_LEFT_OUT = ("index", "corpus_root", *_SUPERVISION_FIELDS)


def _lhotse():
    try:
        import lhotse
    except ImportError:
        raise VoxboxError("lhotse is not installed: pip install 'voxbox[lhotse]'") from None
    return lhotse


def supervision_custom(rec) -> dict:
    """Every non-null record field the supervision does not carry itself."""
    out = {}
    for key, value in rec.to_dict().items():
        if key not in _LEFT_OUT and value is not None:
            out[key] = value
    return out


def record_cut(rec, source):
    """The lhotse cut of one record, its audio at ``source`` (an ``AudioSource``)."""
    from lhotse import Recording, SupervisionSegment
    from lhotse.cut import MonoCut, MultiCut

    channels = list(range(rec.channels or 1))
    duration = rec.num_samples / rec.sample_rate
    recording = Recording(id=rec.index, sources=[source], sampling_rate=rec.sample_rate,
                          num_samples=rec.num_samples, duration=duration, channel_ids=channels)
    channel = channels[0] if len(channels) == 1 else channels
    sup = SupervisionSegment(id=rec.index, recording_id=rec.index, start=0.0, duration=duration, channel=channel,
                             text=rec.text, language=rec.language, speaker=rec.speaker, gender=rec.gender,
                             custom=supervision_custom(rec))
    cls = MonoCut if len(channels) == 1 else MultiCut
    return cls(id=rec.index, start=0.0, duration=duration, channel=channel, recording=recording, supervisions=[sup])


class _JsonlGz:
    """A ``.jsonl.gz`` with a fixed gzip header (mtime 0, no name): same lines, same bytes."""

    def __init__(self, path: Path):
        self.path = path
        self._raw = open(path, "wb")
        self._gz = gzip.GzipFile(filename="", fileobj=self._raw, mode="wb", mtime=0)

    def write(self, obj: dict) -> None:
        self._gz.write((json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8"))

    def close(self) -> None:
        self._gz.close()
        self._raw.close()


def _tar_member(tar, name: str, data: bytes) -> None:
    import tarfile

    info = tarfile.TarInfo(name)  # mtime 0, uid/gid 0: byte-stable
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _shar_shard(samples: Iterator[Tuple[object, bytes, str]], out: Path, k: int) -> int:
    """One Shar shard: ``cuts.<k>.jsonl.gz`` + ``recording.<k>.tar`` (audio copied as is)."""
    import tarfile

    from lhotse.audio import AudioSource
    from lhotse.shar.utils import to_shar_placeholder

    n = 0
    cuts = _JsonlGz(out / f"cuts.{k:06d}.jsonl.gz")
    with tarfile.open(out / f"recording.{k:06d}.tar", "w", format=tarfile.USTAR_FORMAT) as tar:
        for rec, audio, ext in samples:
            cut = record_cut(rec, AudioSource(type="memory", channels=list(range(rec.channels or 1)), source=b""))
            placeholder = to_shar_placeholder(cut.recording)
            _tar_member(tar, f"{cut.id}.{ext}", audio)
            _tar_member(tar, f"{cut.id}.json", (json.dumps(placeholder.to_dict()) + "\n").encode("utf-8"))
            cut.recording = placeholder
            cuts.write(cut.to_dict())
            n += 1
    cuts.close()
    return n


def _jsonl_split(samples: Iterator[Tuple[object, bytes, str]], out: Path, audio_dir: Path) -> int:
    """recordings/supervisions/cuts ``.jsonl.gz`` of one split; audio files under ``audio_dir``."""
    from lhotse.audio import AudioSource

    audio_dir.mkdir(parents=True, exist_ok=True)
    writers = {name: _JsonlGz(out / f"{name}.jsonl.gz") for name in ("recordings", "supervisions", "cuts")}
    n = 0
    for rec, audio, ext in samples:
        path = audio_dir / f"{rec.index}.{ext}"
        path.write_bytes(audio)
        cut = record_cut(rec, AudioSource(type="file", channels=list(range(rec.channels or 1)),
                                          source=str(path.resolve())))
        writers["recordings"].write(cut.recording.to_dict())
        writers["supervisions"].write(cut.supervisions[0].to_dict())
        writers["cuts"].write(cut.to_dict())
        n += 1
    for w in writers.values():
        w.close()
    return n


def _prepare_out(out: Path, force: bool) -> None:
    import shutil

    if out.exists() and not out.is_dir():
        raise VoxboxError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / SUMMARY_NAME).is_file():
            raise VoxboxError(f"{out}: folder is not empty and holds no lhotse export; choose another --out")
        if not force:
            raise VoxboxError(f"{out}: already holds an lhotse export; pass --force to replace it")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def export_lhotse(dataset_dir: Union[str, Path], out_dir: Union[str, Path], *, fmt: str = "shar",
                  split: Optional[str] = None, force: bool = False) -> dict:
    """Write lhotse manifests for a built dataset (see the module docstring); returns the
    summary (also written to ``OUT/summary.json``)."""
    from voxbox.dataset.reader import hub_split, open_dataset
    from voxbox.progress import Progress

    _lhotse()
    if fmt not in FORMATS:
        raise VoxboxError(f"unknown lhotse format {fmt!r}: use {' or '.join(FORMATS)}")
    ds = open_dataset(dataset_dir)
    splits = [split] if split is not None else ds.splits
    for s in splits:
        ds.split_shards(s)  # an unknown split fails before the output folder is touched
    out = Path(out_dir)
    _prepare_out(out, force)
    written: Dict[str, dict] = {}
    with Progress("export lhotse", total=len(ds)) as bar:
        for s in splits:
            name = hub_split(s)
            written[name] = _export_split(ds, s, out / name, out / "audio" / name, fmt, bar)
    summary = {"format": fmt, "dataset": str(ds.path), "dataset_name": ds.name, "splits": written,
               "records": sum(v["cuts"] for v in written.values())}
    (out / SUMMARY_NAME).write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return summary


def _export_split(ds, split: str, out: Path, audio_dir: Path, fmt: str, bar) -> dict:
    out.mkdir(parents=True, exist_ok=True)

    def counted(samples):
        for item in samples:
            bar.update(1, audio_seconds=item[0].num_samples / item[0].sample_rate)
            yield item

    if fmt == "jsonl":
        n = _jsonl_split(counted(ds.samples("webdataset" if "webdataset" in ds.formats else None, split)),
                         out, audio_dir)
        return {"cuts": n, "path": out.name, "read_with": f"CutSet.from_file('{out}/cuts.jsonl.gz')"}
    n, shards = 0, 0
    fmt_in = "webdataset" if "webdataset" in ds.formats else "parquet"
    for k, path in enumerate(ds.shard_files(fmt_in, split)):
        one = _one_shard_samples(ds, fmt_in, path, split)
        n += _shar_shard(counted(one), out, k)
        shards += 1
    return {"cuts": n, "shards": shards, "path": out.name, "read_with": f"CutSet.from_shar(in_dir='{out}')"}


def _one_shard_samples(ds, fmt: str, path: Path, split: str) -> Iterator[Tuple[object, bytes, str]]:
    from voxbox.dataset.reader import hub_split

    for rec, audio, ext in ds.file_samples(path, fmt):
        if hub_split(rec.split) == hub_split(split):
            yield rec, audio, ext


def format_summary(summary: dict) -> str:
    lines = [f"{summary['records']} cuts in lhotse {summary['format']} format"]
    for name, info in summary["splits"].items():
        lines.append(f"  {name}: {info['cuts']} cuts; read with {info['read_with']}")
    return "\n".join(lines)
