"""Output files as projections of the run store.

A finished item's lines are committed to the store (file, offset, bytes) before they are
appended to the file, so on every start each file is checked against what the store says
dialogforge wrote to it:

- the file is as long as recorded and ends with the last recorded lines: append after them;
- it is shorter (deleted, moved, cut by hand, or a crash between commit and write) and what is
  left matches the record: the missing rows are written back from the store, no request sent;
- it is longer: the tail was written by someone else; it moves to ``FILE.foreign-N``;
- it differs inside: the whole file moves to ``FILE.foreign-N`` and is rebuilt from the store.

Nothing dialogforge did not write is ever deleted, and every move or rebuild is said in one line.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from .errors import DialogforgeError
from .store import RunStore

if TYPE_CHECKING:
    from rich.console import Console

_DUMP = orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY


def foreign_path(path: Path) -> Path:
    n = 1
    while (p := path.with_name(f"{path.name}.foreign-{n}")).exists():
        n += 1
    return p


def check_paths(outputs: dict[str, Path]) -> None:
    """Refuse output paths no file can be written at (a folder; a file where a folder of the path should be),
    before the run starts: nothing is asked of a model, and no run store is made, for outputs that cannot be."""
    for path in outputs.values():
        if path.is_dir():
            raise DialogforgeError(f"output {path} is a folder; give a file name")
        parent = path.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise DialogforgeError(f"{parent}: is a file where a folder is needed (output {path})")


class _File:
    __slots__ = ("path", "id", "size", "handle")

    def __init__(self, path: Path, file_id: int, size: int, handle: IO[bytes]):
        self.path, self.id, self.size, self.handle = path, file_id, size, handle


class OutputFiles:
    """Append-only JSONL outputs whose lines are journalled in the run store."""

    def __init__(self, store: RunStore, outputs: dict[str, Path], console: Console):
        self.store = store
        self.console = console
        self.files: dict[str, _File] = {}
        self._queued: list[tuple[_File, bytes]] = []
        check_paths(outputs)
        for name, path in outputs.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            file_id, committed = store.open_file(str(path))
            size = self._reconcile(path, file_id, committed)
            self.files[name] = _File(path, file_id, size, path.open("ab"))

    # --- on start: the file against the store ------------------------------------------------
    def _say(self, msg: str) -> None:
        from ..core.console import escape
        self.console.print(f"[yellow]note:[/] {escape(msg)}", highlight=False, soft_wrap=True)

    def _reconcile(self, path: Path, file_id: int, committed: int | None) -> int:
        actual = path.stat().st_size if path.exists() else 0
        if committed is None:  # a file this store never wrote: what is in it stays, we append after it
            if actual:
                self._say(f"{path} already has {actual} bytes dialogforge did not write; appending after them")
            self.store.set_committed_size(str(path), actual)
            return actual
        if actual > committed:
            self._move_tail(path, committed, actual)
            actual = committed
        last = self.store.append_at(file_id, committed)
        if actual == committed and (last is None or _file_bytes(path, last[0], len(last[1])) == last[1]):
            return committed
        return self._restore(path, file_id, committed, actual)

    def _move_tail(self, path: Path, start: int, end: int) -> None:
        dest = foreign_path(path)
        with path.open("r+b") as f:
            f.seek(start)
            dest.write_bytes(f.read())
            f.truncate(start)
        self._say(f"{path} had {end - start} bytes after what dialogforge wrote; moved them to {dest.name}")

    def _restore(self, path: Path, file_id: int, committed: int, actual: int) -> int:
        """Complete a short file from the store, or move a differing one aside and rebuild it."""
        was_missing: bool | None = not path.exists()
        base = self.store.first_append(file_id)  # bytes before it were never recorded
        if base is None or actual < base:
            self._say(f"{path} is shorter than dialogforge wrote it and this store has no copy of the missing "
                      "rows (written before dialogforge recorded them); taking it as it is")
            self.store.set_committed_size(str(path), actual)
            return actual
        good = _matching_prefix(self.store, file_id, path, base, actual) if actual > base else actual
        if good < actual:
            dest = foreign_path(path)
            shutil.move(str(path), dest)
            self._say(f"{path} differs from what dialogforge wrote at byte {good}; moved it to {dest.name}")
            good, was_missing = 0, None
            if base:
                self.store.shift_appends(file_id, base)
                committed -= base
                self.store.set_committed_size(str(path), committed)
        rows = _write_from(self.store, file_id, path, good, committed)
        how = ("is rebuilt" if was_missing is None else "was missing" if was_missing else "was cut short" if good
               else "was emptied")
        self._say(f"{path} {how}: restored {rows} row(s) from the run store (no request sent)")
        return committed

    # --- while running: journal, then append ----------------------------------------------------
    def write(self, records: dict[str, list]) -> list[tuple[int, int, bytes]]:
        """Queue an item's lines; return (file id, offset, bytes) for the store to commit first."""
        appends = []
        for name, recs in records.items():
            if not recs:
                continue
            f = self.files.get(name)
            if f is None:
                raise DialogforgeError(f"the workflow wrote to an unknown output {name!r} (known: {', '.join(self.files)})")
            data = b"".join([orjson.dumps(r, option=_DUMP) for r in recs])
            appends.append((f.id, f.size, data))
            f.size += len(data)
            self._queued.append((f, data))
        return appends

    def write_committed(self) -> None:
        """After each commit: append the lines it recorded."""
        if not self._queued:
            return
        queued, self._queued = self._queued, []
        touched = {}
        for f, data in queued:
            f.handle.write(data)
            touched[f.id] = f.handle
        for h in touched.values():
            h.flush()

    def close(self) -> None:
        self.write_committed()
        for f in self.files.values():
            f.handle.close()


def _file_bytes(path: Path, offset: int, n: int) -> bytes:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read(n)


def _matching_prefix(store: RunStore, file_id: int, path: Path, base: int, actual: int) -> int:
    """How far from ``base`` the file agrees with the recorded lines (a torn last line agrees)."""
    pos = base
    with path.open("rb") as fh:
        fh.seek(base)
        for offset, data in store.appended(file_id, base, actual):
            if offset != pos:
                return pos  # a gap in the record: trust no further
            got = fh.read(min(len(data), actual - offset))
            if got != data[: len(got)]:
                return pos
            pos = offset + len(got)
            if pos >= actual:
                break
    return pos


def _write_from(store: RunStore, file_id: int, path: Path, start: int, end: int) -> int:
    """Write the recorded lines from byte ``start`` to ``end``; return the number of rows completed."""
    rows = 0
    with path.open("r+b" if path.exists() else "wb") as f:
        f.truncate(start)
        f.seek(start)
        for offset, data in store.appended(file_id, start, end):
            chunk: Any = data[start - offset:] if offset < start else data
            f.write(chunk)
            rows += chunk.count(b"\n")
    return rows
