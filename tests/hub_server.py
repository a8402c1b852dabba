"""A small Hugging Face Hub-compatible HTTP server for tests.

It implements the subset of the Hub API that huggingface_hub 2.x (with
``HF_HUB_DISABLE_XET=1``) and ``datasets`` use to create a repo, upload through the
preupload / LFS batch (basic transfer) / NDJSON commit protocol, list and describe
files (repo info, tree, paths-info), and download files (``resolve``, with ranges), for
model and dataset repos. State lives in memory; repos are small.

Tests start it on 127.0.0.1 and point the client at it (``HF_ENDPOINT`` or an explicit
``endpoint=``). It also records what it was asked (``requests``, ``lfs_uploads``,
``commits``) and can fail on purpose (``fail_commits_after``; ``fail_resolves`` for
downloads) so tests can check what a client does when an upload or a read is
interrupted. A repo seeded with ``gated=True`` lists its files to anyone and serves
them only to users in ``state.gated_access`` (401/403 with ``X-Error-Code: GatedRepo``
otherwise, as the Hub does).
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional, Tuple
from urllib.parse import parse_qs, quote, unquote, urlsplit

import yaml

DEFAULT_TOKEN = "hf_voxboxTestToken0123456789abcdef"
DEFAULT_USER = "alice"
DEFAULT_ORG = "voxorg"

# Files the real Hub routes to LFS through the default .gitattributes of a new repo.
_LFS_SUFFIXES = (
    ".parquet", ".tar", ".arrow", ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".npz",
    ".npy", ".zip", ".gz", ".tgz", ".flac", ".wav", ".mp3", ".onnx", ".msgpack", ".h5",
    ".model", ".pkl",
)
_LFS_MIN_SIZE = 10 * 1024 * 1024
_GITATTRIBUTES = "".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n" for s in _LFS_SUFFIXES).encode()


def git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass(frozen=True)
class FileEntry:
    size: int
    oid: str  # git blob id (of the pointer file for LFS files)
    sha256: Optional[str] = None  # set for LFS files; content is in the LFS store
    content: Optional[bytes] = None  # set for regular files

    @property
    def is_lfs(self) -> bool:
        return self.sha256 is not None


@dataclass
class Commit:
    oid: str
    parent: Optional[str]
    title: str
    date: str
    files: Dict[str, FileEntry]


@dataclass
class Repo:
    type: str
    id: str
    owner: str
    private: bool
    gated: bool = False  # files are listed, content needs a granted user (gated_access)
    branches: Dict[str, str] = field(default_factory=dict)
    commits: Dict[str, Commit] = field(default_factory=dict)

    def resolve(self, revision: str) -> Optional[Commit]:
        if revision in self.branches:
            return self.commits[self.branches[revision]]
        return self.commits.get(revision)


class HubState:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.tokens: Dict[str, str] = {DEFAULT_TOKEN: DEFAULT_USER}
        self.orgs: Dict[str, List[str]] = {DEFAULT_USER: [DEFAULT_ORG]}
        self.repos: Dict[Tuple[str, str], Repo] = {}
        # LFS objects per repo, as on the Hub: another repo's copy does not count.
        self.lfs: Dict[Tuple[str, str], Dict[str, bytes]] = {}
        # Observations for tests.
        self.requests: List[Tuple[str, str, int]] = []
        self.lfs_uploads: List[Tuple[str, str]] = []  # (repo id, sha256)
        self.commits: List[Tuple[str, List[str]]] = []  # (repo id, paths added or deleted)
        # Failure injection: after this many more successful commits, commits fail with 500.
        self.fail_commits_after: Optional[int] = None
        # Failure injection: the next N file downloads (resolve GETs) answer this status.
        self.fail_resolves: int = 0
        self.fail_resolve_status: int = 502
        # Gated repos: (repo type, repo id) -> users granted access.
        self.gated_access: Dict[Tuple[str, str], List[str]] = {}
        self._counter = 0

    # -- helpers -------------------------------------------------------------------
    def _now(self) -> str:
        return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    def new_commit(self, repo: Repo, parent: Optional[str], title: str, files: Dict[str, FileEntry]) -> Commit:
        self._counter += 1
        digest = hashlib.sha1(f"{repo.type}/{repo.id}\0{parent}\0{title}\0{self._counter}".encode())
        for path in sorted(files):
            digest.update(f"{path}\0{files[path].oid}\0".encode())
        commit = Commit(oid=digest.hexdigest(), parent=parent, title=title, date=self._now(), files=files)
        repo.commits[commit.oid] = commit
        return commit

    def lfs_store(self, repo: "Repo") -> Dict[str, bytes]:
        return self.lfs.setdefault((repo.type, repo.id), {})

    def make_entry(self, repo: "Repo", path: str, data: bytes) -> FileEntry:
        if path.endswith(_LFS_SUFFIXES) or len(data) >= _LFS_MIN_SIZE:
            sha = hashlib.sha256(data).hexdigest()
            self.lfs_store(repo)[sha] = data
            return FileEntry(size=len(data), oid=git_blob_oid(lfs_pointer(sha, len(data))), sha256=sha)
        return FileEntry(size=len(data), oid=git_blob_oid(data), content=data)

    def create_repo(self, repo_type: str, repo_id: str, owner: str, private: bool) -> Repo:
        repo = Repo(type=repo_type, id=repo_id, owner=owner, private=private)
        first = self.new_commit(repo, None, "initial commit",
                                {".gitattributes": self.make_entry(repo, ".gitattributes", _GITATTRIBUTES)})
        repo.branches["main"] = first.oid
        self.repos[(repo_type, repo_id)] = repo
        return repo

    def add_files(self, repo_type: str, repo_id: str, files: Dict[str, bytes], private: bool = False,
                  branch: str = "main", message: str = "add files", gated: bool = False) -> str:
        """Seed a repo directly (no HTTP): for test fixtures such as a fake model. A gated
        repo lists its files to anyone; downloads need a user in ``gated_access``."""
        with self.lock:
            repo = self.repos.get((repo_type, repo_id))
            if repo is None:
                repo = self.create_repo(repo_type, repo_id, repo_id.split("/")[0], private)
                repo.gated = gated
            head = repo.resolve(branch)
            new = dict(head.files)
            for path, data in files.items():
                new[path] = self.make_entry(repo, path, data)
            commit = self.new_commit(repo, head.oid, message, new)
            repo.branches[branch] = commit.oid
            return commit.oid

    def read(self, repo: "Repo", entry: FileEntry) -> bytes:
        return self.lfs_store(repo)[entry.sha256] if entry.is_lfs else entry.content


class _Handler(BaseHTTPRequestHandler):
    server_version = "voxbox-test-hub/1.0"
    protocol_version = "HTTP/1.1"

    @property
    def state(self) -> HubState:
        return self.server.state  # type: ignore[attr-defined]

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]  # type: ignore[attr-defined]
        return f"http://{host}:{port}"

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    # -- plumbing ------------------------------------------------------------------
    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", headers: Optional[dict] = None,
              content_type: str = "application/json") -> None:
        self.state.requests.append((self.command, urlsplit(self.path).path, status))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj, headers: Optional[dict] = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _error(self, status: int, message: str, code: Optional[str] = None) -> None:
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self._json(status, {"error": message}, headers)

    def _user(self) -> Optional[str]:
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return None
        return self.state.tokens.get(auth[len("Bearer "):].strip())

    def _has_bad_token(self) -> bool:
        auth = self.headers.get("Authorization", "")
        return auth.startswith("Bearer ") and self._user() is None

    def _can_write(self, user: Optional[str], namespace: str) -> bool:
        return user is not None and (user == namespace or namespace in self.state.orgs.get(user, []))

    def _repo_for_read(self, repo_type: str, repo_id: str) -> Optional[Repo]:
        """The repo, or None after sending the Hub's answer (401 for a bad token, 404 otherwise)."""
        if self._has_bad_token():
            self._error(401, "Invalid credentials in Authorization header")
            return None
        repo = self.state.repos.get((repo_type, repo_id))
        if repo is None or (repo.private and not self._can_write(self._user(), repo.owner)):
            self._error(404, "Repository not found", "RepoNotFound")
            return None
        return repo

    def _commit_for(self, repo: Repo, revision: str) -> Optional[Commit]:
        commit = repo.resolve(revision)
        if commit is None:
            self._error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def _read_at(self, repo_type: str, repo_id: str, revision: str) -> Optional[Tuple[Repo, Commit]]:
        """The repo and the commit a read names, or None after sending the Hub's error."""
        repo = self._repo_for_read(repo_type, repo_id)
        if repo is None:
            return None
        commit = self._commit_for(repo, revision)
        if commit is None:
            return None
        return repo, commit

    # -- routing -------------------------------------------------------------------
    def do_GET(self) -> None:
        self._route()

    def do_HEAD(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def do_PUT(self) -> None:
        self._route()

    def _route(self) -> None:
        parts = urlsplit(self.path)
        segs = [unquote(s) for s in parts.path.split("/")[1:]]
        query = parse_qs(parts.query)
        try:
            with self.state.lock:
                self._dispatch(segs, query)
        except Exception as e:  # noqa: BLE001 - a server bug must show up as a 500, not a hang
            self._error(500, f"test hub error: {type(e).__name__}: {e}")

    def _dispatch(self, segs: List[str], query: dict) -> None:
        m = self.command
        if segs[:2] == ["api", "whoami-v2"] and m == "GET":
            return self._whoami()
        if segs[:3] == ["api", "repos", "create"] and m == "POST":
            return self._create_repo()
        if segs[:2] == ["api", "validate-yaml"] and m == "POST":
            return self._validate_yaml()
        if len(segs) == 5 and segs[0] == "lfs-storage" and m == "PUT":
            return self._lfs_put(segs[1], f"{segs[2]}/{segs[3]}", segs[4])
        if len(segs) == 4 and segs[0] == "lfs-verify" and m == "POST":
            return self._lfs_verify(segs[1], f"{segs[2]}/{segs[3]}")
        if len(segs) >= 4 and segs[0] == "api" and segs[1] in ("models", "datasets"):
            repo_type = segs[1][:-1]
            repo_id = f"{segs[2]}/{segs[3]}"
            rest = segs[4:]
            if not rest and m == "GET":
                return self._info(repo_type, repo_id, "main")
            op = rest[0]
            if op == "revision" and m == "GET":
                return self._info(repo_type, repo_id, "/".join(rest[1:]))
            if op == "tree" and m == "GET":
                return self._tree(repo_type, repo_id, rest[1], "/".join(rest[2:]), query)
            if op == "paths-info" and m == "POST":
                return self._paths_info(repo_type, repo_id, rest[1])
            if op == "preupload" and m == "POST":
                return self._preupload(repo_type, repo_id, rest[1])
            if op == "commit" and m == "POST":
                return self._commit(repo_type, repo_id, "/".join(rest[1:]))
            if op == "refs" and m == "GET":
                return self._refs(repo_type, repo_id)
            if op == "branch" and m == "POST":
                return self._branch(repo_type, repo_id, "/".join(rest[1:]))
        # Git LFS batch: /{prefix}{ns}/{name}.git/info/lfs/objects/batch
        prefix = 1 if segs and segs[0] in ("datasets", "models") else 0
        repo_type = "dataset" if prefix and segs[0] == "datasets" else "model"
        if len(segs) >= prefix + 2 and segs[prefix + 1].endswith(".git") and m == "POST":
            repo_id = f"{segs[prefix]}/{segs[prefix + 1][:-4]}"
            return self._lfs_batch(repo_type, repo_id)
        if len(segs) >= prefix + 5 and segs[prefix + 2] == "resolve" and m in ("GET", "HEAD"):
            repo_id = f"{segs[prefix]}/{segs[prefix + 1]}"
            return self._resolve(repo_type, repo_id, segs[prefix + 3], "/".join(segs[prefix + 4:]))
        self._error(404, f"no such endpoint: {m} {self.path}")

    # -- endpoints -----------------------------------------------------------------
    def _whoami(self) -> None:
        user = self._user()
        if user is None:
            return self._error(401, "Invalid credentials in Authorization header")
        self._json(200, {
            "type": "user", "id": f"id-{user}", "name": user, "fullname": user.title(),
            "orgs": [{"type": "org", "name": o} for o in self.state.orgs.get(user, [])],
            "auth": {"type": "access_token", "accessToken": {"displayName": "tests", "role": "write"}},
        })

    def _create_repo(self) -> None:
        user = self._user()
        if user is None:
            return self._error(401, "Invalid credentials in Authorization header")
        payload = json.loads(self._body() or b"{}")
        namespace = payload.get("organization") or user
        repo_type = payload.get("type") or "model"
        repo_id = f"{namespace}/{payload['name']}"
        if not self._can_write(user, namespace):
            return self._error(403, f"You don't have the rights to create a repo under the namespace {namespace}")
        prefix = "datasets/" if repo_type == "dataset" else ""
        url = f"{self.base}/{prefix}{repo_id}"
        if (repo_type, repo_id) in self.state.repos:
            return self._json(409, {"error": "You already created this repo", "url": url},
                              {"X-Error-Message": "You already created this repo"})
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        self.state.create_repo(repo_type, repo_id, namespace, private)
        self._json(200, {"url": url, "name": repo_id, "id": repo_id})

    def _validate_yaml(self) -> None:
        payload = json.loads(self._body() or b"{}")
        content = payload.get("content", "")
        if content.startswith("---"):
            end = content.find("\n---", 3)
            if end < 0:
                return self._json(400, {"errors": [{"message": "unterminated YAML front matter"}]})
            try:
                meta = yaml.safe_load(content[3:end])
            except yaml.YAMLError as e:
                return self._json(400, {"errors": [{"message": f"invalid YAML: {e}"}]})
            if meta is not None and not isinstance(meta, dict):
                return self._json(400, {"errors": [{"message": "metadata must be a mapping"}]})
        self._json(200, {"warnings": []})

    def _info(self, repo_type: str, repo_id: str, revision: str) -> None:
        found = self._read_at(repo_type, repo_id, revision)
        if found is None:
            return
        repo, commit = found
        blobs = "blobs" in parse_qs(urlsplit(self.path).query)
        siblings = []
        for path in sorted(commit.files):
            e = commit.files[path]
            s = {"rfilename": path}
            if blobs:
                s.update(size=e.size, blobId=e.oid)
                if e.is_lfs:
                    s["lfs"] = {"sha256": e.sha256, "size": e.size,
                                "pointerSize": len(lfs_pointer(e.sha256, e.size))}
            siblings.append(s)
        card = None
        if "README.md" in commit.files:
            card = _front_matter(self.state.read(repo, commit.files["README.md"]))
        self._json(200, {
            "_id": f"id-{repo_id}", "id": repo_id, "author": repo.owner, "sha": commit.oid,
            "private": repo.private, "gated": "manual" if repo.gated else False, "disabled": False,
            "downloads": 0, "likes": 0,
            "tags": [], "lastModified": commit.date, "createdAt": commit.date,
            "cardData": card, "siblings": siblings,
        })

    def _entry_json(self, path: str, e: FileEntry, commit: Commit, expand: bool) -> dict:
        d = {"type": "file", "oid": e.oid, "size": e.size, "path": path}
        if e.is_lfs:
            d["lfs"] = {"oid": e.sha256, "size": e.size, "pointerSize": len(lfs_pointer(e.sha256, e.size))}
        if expand:
            d["lastCommit"] = {"id": commit.oid, "title": commit.title, "date": commit.date}
        return d

    def _dir_json(self, path: str, commit: Commit, expand: bool) -> dict:
        d = {"type": "directory", "oid": hashlib.sha1(f"{commit.oid}/{path}".encode()).hexdigest(),
             "size": 0, "path": path}
        if expand:
            d["lastCommit"] = {"id": commit.oid, "title": commit.title, "date": commit.date}
        return d

    def _tree(self, repo_type: str, repo_id: str, revision: str, path: str, query: dict) -> None:
        found = self._read_at(repo_type, repo_id, revision)
        if found is None:
            return
        _, commit = found
        recursive = query.get("recursive", ["False"])[0].lower() in ("1", "true")
        expand = query.get("expand", ["False"])[0].lower() in ("1", "true")
        path = path.strip("/")
        prefix = path + "/" if path else ""
        if path and path in commit.files:
            return self._error(404, f"{path} is a file, not a folder", "EntryNotFound")
        under = [p for p in sorted(commit.files) if p.startswith(prefix)]
        if path and not under:
            return self._error(404, f"{path} does not exist on {revision}", "EntryNotFound")
        out, dirs = [], set()
        for p in under:
            rel = p[len(prefix):]
            pieces = rel.split("/")
            for i in range(1, len(pieces)):
                d = prefix + "/".join(pieces[:i])
                if d not in dirs and (recursive or i == 1):
                    dirs.add(d)
                    out.append(self._dir_json(d, commit, expand))
            if recursive or len(pieces) == 1:
                out.append(self._entry_json(p, commit.files[p], commit, expand))
        self._json(200, out)

    def _paths_info(self, repo_type: str, repo_id: str, revision: str) -> None:
        found = self._read_at(repo_type, repo_id, revision)
        if found is None:
            return
        _, commit = found
        body = self._body()
        if self.headers.get("Content-Type", "").startswith("application/json"):
            form = json.loads(body or b"{}")
            paths = form.get("paths", [])
            expand = bool(form.get("expand"))
        else:
            form = parse_qs(body.decode())
            paths = form.get("paths", [])
            expand = form.get("expand", ["False"])[0].lower() in ("1", "true")
        out = []
        for p in paths:
            p = p.strip("/")
            if p in commit.files:
                out.append(self._entry_json(p, commit.files[p], commit, expand))
            elif any(f.startswith(p + "/") for f in commit.files):
                out.append(self._dir_json(p, commit, expand))
        self._json(200, out)

    def _refs(self, repo_type: str, repo_id: str) -> None:
        repo = self._repo_for_read(repo_type, repo_id)
        if repo is None:
            return
        self._json(200, {
            "branches": [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": c} for b, c in repo.branches.items()],
            "tags": [], "converts": [],
        })

    def _branch(self, repo_type: str, repo_id: str, branch: str) -> None:
        repo = self.state.repos.get((repo_type, repo_id))
        if repo is None:
            return self._error(404, "Repository not found", "RepoNotFound")
        if not self._can_write(self._user(), repo.owner):
            return self._error(401, "Invalid credentials in Authorization header")
        payload = json.loads(self._body() or b"{}")
        if branch in repo.branches:
            return self._error(409, f"Reference already exists: refs/heads/{branch}")
        start = repo.resolve(payload.get("startingPoint") or "main")
        if start is None:
            return self._error(404, "Invalid starting point", "RevisionNotFound")
        repo.branches[branch] = start.oid
        self._json(200, {})

    def _writable_repo(self, repo_type: str, repo_id: str) -> Optional[Repo]:
        if self._user() is None:
            self._error(401, "Invalid credentials in Authorization header")
            return None
        repo = self.state.repos.get((repo_type, repo_id))
        if repo is None or not self._can_write(self._user(), repo.owner):
            self._error(404, "Repository not found", "RepoNotFound")
            return None
        return repo

    def _preupload(self, repo_type: str, repo_id: str, revision: str) -> None:
        repo = self._writable_repo(repo_type, repo_id)
        if repo is None:
            return
        commit = self._commit_for(repo, revision)
        if commit is None:
            return
        payload = json.loads(self._body() or b"{}")
        files = []
        for f in payload.get("files", []):
            sample = base64.b64decode(f.get("sample", ""))
            lfs = f["path"].endswith(_LFS_SUFFIXES) or f["size"] >= _LFS_MIN_SIZE or b"\0" in sample
            remote = commit.files.get(f["path"])
            oid = None
            if remote is not None:
                oid = remote.sha256 if remote.is_lfs else remote.oid
            files.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular",
                          "shouldIgnore": False, "oid": oid})
        self._json(200, {"files": files, "commitOid": commit.oid})

    def _lfs_batch(self, repo_type: str, repo_id: str) -> None:
        repo = self._writable_repo(repo_type, repo_id)
        if repo is None:
            return
        payload = json.loads(self._body() or b"{}")
        objects = []
        for obj in payload.get("objects", []):
            oid, size = obj["oid"], int(obj["size"])
            item = {"oid": oid, "size": size, "authenticated": True}
            if oid not in self.state.lfs_store(repo):
                where = f"{repo_type}/{quote(repo_id, safe='/')}"
                item["actions"] = {
                    "upload": {"href": f"{self.base}/lfs-storage/{where}/{oid}", "header": {}},
                    "verify": {"href": f"{self.base}/lfs-verify/{where}", "header": {}},
                }
            objects.append(item)
        self._send(200, json.dumps({"transfer": "basic", "objects": objects}).encode(),
                   content_type="application/vnd.git-lfs+json")

    def _lfs_put(self, repo_type: str, repo_id: str, oid: str) -> None:
        data = self._body()
        repo = self.state.repos.get((repo_type, repo_id))
        if repo is None:
            return self._error(404, "Repository not found", "RepoNotFound")
        if hashlib.sha256(data).hexdigest() != oid:
            return self._error(400, "uploaded content does not match its sha256")
        self.state.lfs_store(repo)[oid] = data
        self.state.lfs_uploads.append((repo_id, oid))
        self._send(200, b"", content_type="text/plain")

    def _lfs_verify(self, repo_type: str, repo_id: str) -> None:
        payload = json.loads(self._body() or b"{}")
        repo = self.state.repos.get((repo_type, repo_id))
        data = self.state.lfs_store(repo).get(payload.get("oid")) if repo else None
        if data is None or len(data) != payload.get("size"):
            return self._error(404, "object not found")
        self._json(200, {})

    def _commit(self, repo_type: str, repo_id: str, revision: str) -> None:
        repo = self._writable_repo(repo_type, repo_id)
        if repo is None:
            return
        if revision not in repo.branches:
            return self._error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        if self.state.fail_commits_after is not None:
            if self.state.fail_commits_after <= 0:
                return self._error(500, "injected failure: the server went away during the commit")
            self.state.fail_commits_after -= 1
        head = repo.resolve(revision)
        files = dict(head.files)
        title, touched = "commit", []
        for line in lines:
            key, value = line["key"], line["value"]
            if key == "header":
                title = value.get("summary") or title
                parent = value.get("parentCommit")
                if parent and parent != head.oid:
                    return self._error(412, "A commit has happened since. Please refresh and try again.")
            elif key == "file":
                data = base64.b64decode(value["content"])
                files[value["path"]] = FileEntry(size=len(data), oid=git_blob_oid(data), content=data)
                touched.append(value["path"])
            elif key == "lfsFile":
                data = self.state.lfs_store(repo).get(value["oid"])
                if data is None:
                    return self._error(422, f"LFS object {value['oid']} for {value['path']} was never uploaded")
                files[value["path"]] = FileEntry(size=len(data), sha256=value["oid"],
                                                 oid=git_blob_oid(lfs_pointer(value["oid"], len(data))))
                touched.append(value["path"])
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    return self._error(404, "A file with this name doesn't exist", "EntryNotFound")
                touched.append(value["path"])
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                for p in [p for p in files if p.startswith(prefix)]:
                    del files[p]
                    touched.append(p)
            else:
                return self._error(400, f"unknown commit operation {key}")
        commit = self.state.new_commit(repo, head.oid, title, files)
        repo.branches[revision] = commit.oid
        self.state.commits.append((repo_id, touched))
        prefix = "datasets/" if repo_type == "dataset" else ""
        self._json(200, {"success": True, "commitOid": commit.oid, "pullRequestUrl": None,
                         "commitUrl": f"{self.base}/{prefix}{repo_id}/commit/{commit.oid}"})

    def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        found = self._read_at(repo_type, repo_id, revision)
        if found is None:
            return
        repo, commit = found
        if repo.gated and self._user() not in self.state.gated_access.get((repo_type, repo_id), []):
            # As the Hub: 401 without a token, 403 with one that was not granted access.
            return self._error(401 if self._user() is None else 403,
                               f"Access to {repo_type} {repo_id} is restricted. You must have access to it "
                               "and be authenticated to access it. Please log in.", "GatedRepo")
        if self.state.fail_resolves > 0 and self.command == "GET":
            self.state.fail_resolves -= 1
            return self._error(self.state.fail_resolve_status, "injected failure: upstream went away")
        entry = commit.files.get(path)
        if entry is None:
            return self._error(404, f"Entry not found: {path}", "EntryNotFound")
        data = self.state.read(repo, entry)
        headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{entry.oid}"', "Accept-Ranges": "bytes"}
        if entry.is_lfs:
            headers["X-Linked-Etag"] = f'"{entry.sha256}"'
            headers["X-Linked-Size"] = str(entry.size)
        status = 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            first, _, last = rng[len("bytes="):].split(",")[0].partition("-")
            if first == "":
                start, end = max(0, len(data) - int(last)), len(data) - 1
            else:
                start, end = int(first), (int(last) if last else len(data) - 1)
            end = min(end, len(data) - 1)
            if start >= len(data):
                return self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start:end + 1], 206
        self._send(status, data, headers, content_type="application/octet-stream")


def _front_matter(readme: bytes) -> Optional[dict]:
    text = readme.decode("utf-8", errors="replace")
    if not text.startswith("---"):
        return None
    end = text.find("\n---", 3)
    try:
        meta = yaml.safe_load(text[3:end]) if end > 0 else None
    except yaml.YAMLError:
        return None
    return meta if isinstance(meta, dict) else None


class HubServer:
    """Run the test Hub on 127.0.0.1 in a background thread (a context manager)."""

    def __init__(self) -> None:
        self.state = HubState()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.state = self.state  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "HubServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # Conveniences for tests.
    def repo_files(self, repo_type: str, repo_id: str, revision: str = "main") -> Dict[str, bytes]:
        with self.state.lock:
            repo = self.state.repos[(repo_type, repo_id)]
            commit = repo.resolve(revision)
            return {p: self.state.read(repo, e) for p, e in commit.files.items()}

    def add_files(self, *args, **kwargs) -> str:
        return self.state.add_files(*args, **kwargs)

    def resolve_url(self, repo_type: str, repo_id: str, path: str, revision: str = "main") -> str:
        prefix = "datasets/" if repo_type == "dataset" else ""
        return f"{self.url}/{prefix}{repo_id}/resolve/{quote(revision, safe='')}/{path}"
