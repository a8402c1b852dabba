"""Options several commands share, declared once so their names and help stay the same.

Each is a function returning a fresh ``typer.Option`` (a command's parameter default):
``engine: str = engine_option()``.
"""

from __future__ import annotations

import typer


def engine_option():
    return typer.Option("local", "--engine",
                        help="local (worker processes) or ray (Ray tasks and actor pools, on this machine or a "
                             "cluster: docs/cluster.md; needs the ray extra of voxbox).")


def ray_address_option():
    return typer.Option(None, "--ray-address",
                        help="Ray cluster to join (e.g. ray://head:10001 or 'auto'). Default: $RAY_ADDRESS, "
                             "else a local Ray instance.")


def allow_absolute_paths_option():
    return typer.Option(False, "--allow-absolute-paths",
                        help="Read audio at source paths that leave the record's corpus_root (absolute, or with "
                             "'..'). Default: such records are rejected, since a manifest could otherwise copy any "
                             "readable file into the output.")


def cache_option():
    return typer.Option(None, "--cache",
                        help="Local folder that caches what is read from a remote --root (1 MiB blocks, keyed by "
                             "URL and content hash): a rerun reads from disk, not the network. Default: none "
                             "($VOXBOX_REMOTE_CACHE).")
