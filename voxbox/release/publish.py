"""``voxbox publish``: upload a built dataset folder to a Hugging Face dataset repo.

What goes up: the shards listed in ``index.json`` (WebDataset tars, Parquet files),
``index.json``, ``pipeline.yaml``, ``provenance.json``, ``rejects.jsonl``, and a
generated dataset card (``README.md``, :mod:`voxbox.release.card`).

Resume by comparison, not by bookkeeping: before uploading, the remote tree is listed
and every local file is compared with the remote file at the same path by content
hash (the LFS sha256 for LFS files, the git blob id for regular files). Only files
that are missing or different are uploaded. Shards go up in batches, one commit per
batch, so an interruption loses at most the batch in flight, and LFS objects already
uploaded by an interrupted batch are not sent again (the LFS batch API reports them
as present). The card, index and metadata go last, in one commit that also deletes
shards the folder no longer has, so a reader never sees an index or card that points
at shards not uploaded yet.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

from voxbox.errors import VoxboxError
from voxbox.release.hub import check_user, hub_errors, make_api, quiet_hub_progress, resolve_token
from voxbox.shards.index import sha256_file

DEFAULT_BATCH_FILES = 50  # the Hub's guidance (and datasets' own push_to_hub) per commit
DEFAULT_BATCH_BYTES = 2 * 1024 ** 3
SHARD_DIRS = ("webdataset/", "parquet/")
METADATA_FILES = ("index.json", "pipeline.yaml", "provenance.json", "rejects.jsonl")
CARD_NAME = "README.md"


@dataclass(frozen=True)
class LocalFile:
    path_in_repo: str
    source: Union[Path, bytes]  # a file, or generated content (the card)
    size: int
    sha256: Optional[str] = None  # known from index.json for shards

    def read(self) -> bytes:
        return self.source if isinstance(self.source, bytes) else Path(self.source).read_bytes()

    def content_sha256(self) -> str:
        if self.sha256:
            return self.sha256
        if isinstance(self.source, bytes):
            return hashlib.sha256(self.source).hexdigest()
        return sha256_file(self.source)

    def verify(self) -> None:
        """A shard must still hold the bytes index.json vouches for: publishing a shard
        damaged after the build would ship corrupt data under a valid-looking index."""
        if self.sha256 is None or isinstance(self.source, bytes):
            return
        actual = sha256_file(self.source)
        if actual != self.sha256:
            raise VoxboxError(f"{self.source}: contents differ from index.json (sha256 {actual[:12]}... "
                              f"instead of {self.sha256[:12]}...); run `voxbox validate` and rebuild")

    def git_blob_id(self) -> str:
        data = self.read()
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class PublishResult:
    repo_id: str
    revision: str
    url: str
    user: str
    uploaded: List[str] = field(default_factory=list)
    unchanged: List[str] = field(default_factory=list)
    deleted: List[str] = field(default_factory=list)
    commits: int = 0
    bytes_uploaded: int = 0
    notes: List[str] = field(default_factory=list)
    dry_run: bool = False

    def summary(self) -> str:
        if self.dry_run:
            return (f"dry run for {self.url} (revision {self.revision}): would upload {len(self.uploaded)} files "
                    f"({self.bytes_uploaded / 1e6:.1f} MB) in {self.commits} commit{'s' if self.commits != 1 else ''}"
                    f", delete {len(self.deleted)} stale files; {len(self.unchanged)} unchanged")
        if not self.uploaded and not self.deleted:
            text = f"{self.url} (revision {self.revision}) is up to date: {len(self.unchanged)} files unchanged"
        else:
            mb = self.bytes_uploaded / 1e6
            text = (f"published to {self.url} (revision {self.revision}): {len(self.uploaded)} files uploaded "
                    f"({mb:.1f} MB) in {self.commits} commit{'s' if self.commits != 1 else ''}, "
                    f"{len(self.unchanged)} unchanged, {len(self.deleted)} stale files deleted")
        return "\n".join([text, *(f"note: {n}" for n in self.notes)])


class _NoBar:
    def update(self, n: int = 1, audio_seconds: float = 0.0) -> None:
        pass

    def __enter__(self) -> "_NoBar":
        return self

    def __exit__(self, *exc) -> None:
        pass


def local_files(ds, card_text: Optional[str]) -> List[LocalFile]:
    """Every file publish uploads, shards first (sorted), then metadata, then the card."""
    files: List[LocalFile] = []
    for shard in ds.shards:
        for fmt in sorted(shard["files"]):
            info = shard["files"][fmt]
            p = ds.path / info["path"]
            if not p.is_file():
                raise VoxboxError(f"{p}: shard listed in index.json is missing; rebuild or run `voxbox validate`")
            size = p.stat().st_size
            if size != info["bytes"]:
                raise VoxboxError(f"{p}: size {size} differs from index.json ({info['bytes']}); the folder "
                                  f"changed after the build, run `voxbox validate`")
            files.append(LocalFile(info["path"], p, size, info.get("sha256")))
    files.sort(key=lambda f: f.path_in_repo)
    for name in METADATA_FILES:
        p = ds.path / name
        if p.is_file():
            files.append(LocalFile(name, p, p.stat().st_size))
    if card_text is not None:
        data = card_text.encode("utf-8")
        files.append(LocalFile(CARD_NAME, data, len(data)))
    return files


def remote_state(api, repo_id: str, revision: str) -> Dict[str, Tuple[Optional[str], str, int]]:
    """``path -> (lfs sha256 or None, git blob id, size)`` for every file at ``revision``."""
    from huggingface_hub.hf_api import RepoFile

    out = {}
    for item in api.list_repo_tree(repo_id, repo_type="dataset", revision=revision, recursive=True):
        if isinstance(item, RepoFile):
            out[item.path] = (item.lfs.sha256 if item.lfs else None, item.blob_id, item.size)
    return out


def is_unchanged(local: LocalFile, remote: Optional[Tuple[Optional[str], str, int]]) -> bool:
    if remote is None:
        return False
    sha256, blob_id, size = remote
    if size != local.size:
        return False
    if sha256 is not None:
        return sha256 == local.content_sha256()
    return blob_id == local.git_blob_id()


def plan_batches(files: List[LocalFile], batch_files: int, batch_bytes: int) -> List[List[LocalFile]]:
    batches: List[List[LocalFile]] = []
    cur: List[LocalFile] = []
    cur_bytes = 0
    for f in files:
        if cur and (len(cur) >= batch_files or cur_bytes + f.size > batch_bytes):
            batches.append(cur)
            cur, cur_bytes = [], 0
        cur.append(f)
        cur_bytes += f.size
    if cur:
        batches.append(cur)
    return batches


def plan_changes(files: List[LocalFile], remote: dict, result: "PublishResult"):
    """Split local files into unchanged (recorded in ``result``), shards and metadata to
    upload; and list remote shard files the folder no longer has."""
    todo_shards, todo_meta = [], []
    for f in files:
        if is_unchanged(f, remote.get(f.path_in_repo)):
            result.unchanged.append(f.path_in_repo)
        elif f.path_in_repo.startswith(SHARD_DIRS):
            todo_shards.append(f)
        else:
            todo_meta.append(f)
    local_paths = {f.path_in_repo for f in files}
    stale = sorted(p for p in remote if p.startswith(SHARD_DIRS) and p not in local_paths)
    return todo_shards, todo_meta, stale


def _dry_run(target: "_Target", files: List[LocalFile], batch_files: int, batch_bytes: int) -> "PublishResult":
    from huggingface_hub import errors as hf

    missing = tuple(getattr(hf, n) for n in ("RepositoryNotFoundError", "RevisionNotFoundError") if hasattr(hf, n))
    with hub_errors(action=f"list the files of {target.repo_id}", **target.errors):
        try:
            # One plain request first: the paged file listing retries a dead endpoint for ~25 s.
            target.api.repo_info(target.repo_id, repo_type="dataset")
            remote = remote_state(target.api, target.repo_id, target.branch)
        except missing:
            remote = {}  # nothing published yet: everything would be uploaded
    result = PublishResult(repo_id=target.repo_id, revision=target.branch,
                           url=f"{target.url}/datasets/{target.repo_id}", user=target.user, dry_run=True)
    shards, meta, stale = plan_changes(files, remote, result)
    result.uploaded = [f.path_in_repo for f in shards + meta]
    result.bytes_uploaded = sum(f.size for f in shards + meta)
    result.deleted = stale
    result.commits = len(plan_batches(shards, batch_files, batch_bytes)) + (1 if meta or stale else 0)
    return result


def publish(dataset_dir: Union[str, Path], repo_id: str, *, private: bool = False, revision: Optional[str] = None,
            token: Optional[str] = None, endpoint: Optional[str] = None, batch_files: int = DEFAULT_BATCH_FILES,
            batch_bytes: int = DEFAULT_BATCH_BYTES, card: bool = True, progress: bool = True,
            dry_run: bool = False) -> PublishResult:
    """Upload a built folder to the dataset repo ``repo_id`` (created if needed).

    Reruns upload only what is missing or changed (checked by hash against the
    remote); an unchanged folder uploads nothing. ``revision`` is a branch, created
    from ``main`` if it does not exist. The token (argument, ``HF_TOKEN`` or the stored
    login) is never printed or put in an error message. ``dry_run`` compares with the
    remote and reports what would be uploaded or deleted, changing nothing.

    Transfers go through huggingface_hub, which uses the Hub's Xet storage when the
    ``hf_xet`` package is installed (voxbox does not switch it off) and LFS otherwise; an
    endpoint without Xet storage gets LFS uploads (noted in the result). The comparison
    by sha256 works the same for both.
    """
    from voxbox.dataset.reader import require_local
    from voxbox.release.hub import endpoint_url

    require_local(dataset_dir, "publish", "it uploads local files; build straight to the Hub with "
                  "`voxbox build --out hf://datasets/OWNER/NAME/PATH`, or copy the dataset here first "
                  "(e.g. `aws s3 sync URL DIR`) and publish that folder")
    if "/" not in repo_id or repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise VoxboxError(f"--repo-id must look like OWNER/NAME, got {repo_id!r}")
    if batch_files < 1 or batch_bytes < 1:
        raise VoxboxError("batch sizes must be positive")
    url = endpoint_url(endpoint)
    token = resolve_token(token)
    api = make_api(url, token)
    user = check_user(api, endpoint=url, token=token) if (token or not dry_run) else "anonymous"
    target = _Target(api, repo_id, revision or "main", url, user,
                     dict(endpoint=url, repo_id=repo_id, repo_type="dataset", token=token))
    files = _local_files(dataset_dir, repo_id, card, progress)
    if dry_run:
        return _dry_run(target, files, batch_files, batch_bytes)
    result = _prepare_repo(target, private)
    todo_shards, todo_meta, stale = plan_changes(files, target.remote(), result)
    if todo_shards or todo_meta or stale:
        _upload(target, result, plan_batches(todo_shards, batch_files, batch_bytes), todo_meta, stale, progress)
    if target.xet_fallback:
        result.notes.append(f"{url} offers no Xet storage; the files went up through LFS")
    return result


@dataclass
class _Target:
    """The repo and branch being published to, and how to talk to it."""

    api: object
    repo_id: str
    branch: str
    url: str
    user: str
    errors: dict  # hub_errors() context: endpoint, repo, token to scrub

    def remote(self) -> dict:
        with hub_errors(action=f"list the files of {self.repo_id}", **self.errors):
            return remote_state(self.api, self.repo_id, self.branch)

    xet_fallback: bool = False  # the endpoint offered no Xet storage: uploads went through LFS

    def commit(self, ops: list, message: str, action: str) -> None:
        with hub_errors(action=action, **self.errors):
            try:
                self.api.create_commit(self.repo_id, ops, repo_type="dataset", revision=self.branch,
                                       commit_message=message)
            except OSError as e:
                if "xet" not in str(e).lower() or self.xet_fallback:
                    raise
                # huggingface_hub with hf_xet always asks for a Xet token, and a Hub-compatible
                # server without Xet storage answers 404: upload the LFS way instead.
                from huggingface_hub import constants

                constants.HF_HUB_DISABLE_XET = True
                self.xet_fallback = True
                self.api.create_commit(self.repo_id, ops, repo_type="dataset", revision=self.branch,
                                       commit_message=message)


def _local_files(dataset_dir, repo_id: str, card: bool, progress: bool) -> List[LocalFile]:
    """The folder's files, with the generated card (its statistics need one pass)."""
    from voxbox.dataset.reader import open_dataset
    from voxbox.dataset.stats import collect_stats
    from voxbox.release.card import render_card

    ds = open_dataset(dataset_dir)
    card_text = render_card(ds, collect_stats(ds, progress=progress), repo_id=repo_id) if card else None
    return local_files(ds, card_text)


def _prepare_repo(target: _Target, private: bool) -> PublishResult:
    """Create the repo (and branch) if missing; say if --private could not apply."""
    api, repo_id = target.api, target.repo_id
    with hub_errors(action=f"create {repo_id}", **target.errors):
        repo_url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    notes = []
    if private:
        with hub_errors(action=f"read {repo_id}", **target.errors):
            if api.repo_info(repo_id, repo_type="dataset").private is False:
                notes.append(f"{repo_id} already existed as a public repo and stays public (--private only "
                             f"applies when creating it)")
    if target.branch != "main":
        with hub_errors(action=f"create branch {target.branch}", **target.errors):
            api.create_branch(repo_id, repo_type="dataset", branch=target.branch, exist_ok=True)
    return PublishResult(repo_id=repo_id, revision=target.branch, url=str(repo_url), user=target.user, notes=notes)


def _adds(files: List[LocalFile]) -> list:
    from huggingface_hub import CommitOperationAdd

    return [CommitOperationAdd(path_in_repo=f.path_in_repo,
                               path_or_fileobj=f.source if isinstance(f.source, bytes) else str(f.source))
            for f in files]


def _upload(target: _Target, result: PublishResult, batches: List[List[LocalFile]], meta: List[LocalFile],
            stale: List[str], progress: bool) -> None:
    """Shards in batches (one commit each), then card, index and metadata with the stale
    deletions in one last commit, so readers never see an index ahead of its shards."""
    from huggingface_hub import CommitOperationDelete

    from voxbox.progress import Progress

    total = sum(f.size for batch in batches for f in batch) + sum(f.size for f in meta)
    bar = Progress("upload", total=total, unit="B") if progress else _NoBar()
    with quiet_hub_progress(), bar:
        for i, batch in enumerate(batches, 1):
            for f in batch:
                f.verify()
            target.commit(_adds(batch), f"voxbox publish: shards, batch {i} of {len(batches)}",
                          f"upload shards (batch {i} of {len(batches)}); rerun to resume")
            _count(result, batch, bar)
        if meta or stale:
            ops = _adds(meta) + [CommitOperationDelete(path_in_repo=p) for p in stale]
            target.commit(ops, "voxbox publish: dataset card, index and metadata",
                          "upload the card and index; rerun to resume")
            _count(result, meta, bar)
            result.deleted += stale


def _count(result: PublishResult, files: List[LocalFile], bar) -> None:
    result.commits += 1
    result.uploaded += [f.path_in_repo for f in files]
    result.bytes_uploaded += sum(f.size for f in files)
    bar.update(sum(f.size for f in files))
