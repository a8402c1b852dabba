"""A build across a simulated 3-node Ray cluster, one node killed mid-build.

``ray.cluster_utils.Cluster`` starts a head (no CPUs: it only coordinates) and three
worker raylets of one CPU each on this machine. The build joins the cluster by address
(``--ray-address``) from a working directory of its own; shard tasks get their records
through the object store (shard plans), never through a path only the driver made. When
a shard task is running on a worker node, that node is removed (its raylet and workers
killed). Whatever the first build then does (Ray reruns the lost shard elsewhere, or the
build stops), a rerun completes, and the shards and index are byte-identical to a local
build. Slow: four raylets start on two cores.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from voxbox.build.pipeline import load_pipeline
from voxbox.build.run import build
from voxbox.build.sources import manifest_source
from voxbox.errors import VoxboxError

from voxbox_build_fixtures import TESTS, journalled_shards, shard_bytes, write_corpus_manifest, write_pipeline


def _ancestors(pid: int):
    """The parent pids of a live process, nearest first (Linux /proc)."""
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state
        yield pid


def _node_running_a_shard(cluster, busy: Path):
    """The worker node whose raylet is an ancestor of a process now inside a record
    (TinyStage touches a file named by its pid in ``busy`` as it starts a record, then
    sleeps 0.4 s), or None."""
    raylets = {n.all_processes["raylet"][0].process.pid: n for n in cluster.worker_nodes}
    now = time.time()
    for f in busy.iterdir():
        if now - f.stat().st_mtime > 0.3:
            continue
        for parent in _ancestors(int(f.name)):
            if parent in raylets:
                return raylets[parent]
    return None


def _kill_a_busy_node(cluster, busy: Path, journal: Path, killed: list) -> None:
    """Once a shard is journalled (the build is under way), remove a node that is
    running a shard task."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        node = _node_running_a_shard(cluster, busy) if journalled_shards(journal) >= 1 else None
        if node is not None:
            killed.append((node, journalled_shards(journal)))
            cluster.remove_node(node, allow_graceful=False)
            return
        time.sleep(0.05)


@pytest.mark.slow
def test_build_on_three_nodes_survives_a_lost_node(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray", reason="needs the ray extra: pip install 'voxbox[ray]'")
    from ray.cluster_utils import Cluster

    # Raylets inherit this environment: their workers import the test stages.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), str(TESTS.parent)]))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    manifest = write_corpus_manifest(tmp_path, n=18)
    busy = tmp_path / "busy"
    busy.mkdir()
    stages = [{"stage": "voxbox_build_fixtures:TinyStage",
               "params": {"tokens": True, "sleep": 0.4, "busy_dir": str(busy)}},
              {"stage": "voxbox_build_fixtures:TinyBatchStage", "params": {}}]
    pipe = load_pipeline(write_pipeline(tmp_path / "p.yaml", stages=stages, shard_records=2))
    build(manifest_source(manifest), tmp_path / "local", pipe, workers=1)

    out = tmp_path / "cluster"
    driver_cwd = tmp_path / "driver"
    driver_cwd.mkdir()
    monkeypatch.chdir(driver_cwd)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False,
                                                            "object_store_memory": 80 * 2**20})
    killed: list = []
    try:
        for _ in range(3):
            cluster.add_node(num_cpus=1, object_store_memory=80 * 2**20)
        cluster.wait_for_nodes()
        killer = threading.Thread(target=_kill_a_busy_node, args=(cluster, busy, out / "journal.jsonl", killed))
        killer.start()
        try:
            build(manifest_source(manifest), out, pipe, engine="ray", workers=3, ray_address=cluster.address)
            first = "completed (Ray reran the lost shard on another node)"
        except VoxboxError as e:
            first = f"stopped: {e}"
        killer.join()
        assert killed, "no worker node was seen running a shard"
        assert killed[0][1] < 9, "the node was removed after the build had finished"
        assert len(cluster.worker_nodes) == 2
        # The rerun (resume) on the two nodes left.
        index = build(manifest_source(manifest), out, pipe, engine="ray", workers=2, ray_address=cluster.address)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
    print(f"first build {first}; node removed after {killed[0][1]} shard(s) were journalled")
    assert index["totals"]["records"] == 18
    assert shard_bytes(out) == shard_bytes(tmp_path / "local")
