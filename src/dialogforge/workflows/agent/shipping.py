"""Task workspaces as bytes, so a run on Ray needs no disk shared with the workers.

The driver packs each distinct workspace folder into a gzipped tar (``pack_workspaces``); the
packed dict travels with the run's per-item function through Ray's object store; each worker
unpacks it once into its own temporary folder and points its copies of the tasks there
(``unpack_workspaces``). Sandboxes are then made from that local copy, as in a local run.
"""
from __future__ import annotations

import atexit
import dataclasses
import hashlib
import io
import shutil
import tarfile
import tempfile
from pathlib import Path

from ...engine.errors import ConfigError
from .tasks import Task


def _key(folder: str) -> str:
    return hashlib.blake2b(str(Path(folder).resolve()).encode(), digest_size=8).hexdigest()


def pack_workspaces(tasks: list[Task]) -> dict[str, bytes]:
    """{key of the folder: tar.gz bytes} for every distinct task workspace."""
    packed: dict[str, bytes] = {}
    for t in tasks:
        if not t.workspace or _key(t.workspace) in packed:
            continue
        src = Path(t.workspace)
        if not src.is_dir():
            raise ConfigError(f"task {t.id}: workspace {t.workspace!r} is not a folder")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            tar.add(src, arcname=".")
        packed[_key(t.workspace)] = buf.getvalue()
    return packed


def unpack_workspaces(tasks: list[Task], packed: dict[str, bytes]) -> list[Task]:
    """Unpack into a temporary folder of this process (removed at exit); tasks point there."""
    root = Path(tempfile.mkdtemp(prefix="df-workspaces-"))
    atexit.register(shutil.rmtree, root, True)
    where: dict[str, str] = {}
    for key, blob in packed.items():
        dest = root / key
        dest.mkdir()
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
            tar.extractall(dest, filter="data")
        where[key] = str(dest)
    return [dataclasses.replace(t, workspace=where[_key(t.workspace)]) if t.workspace else t for t in tasks]
