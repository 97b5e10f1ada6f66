"""The run store is versioned and migrated on open; a store written before versioning still works."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from dialogforge.engine import DialogforgeError, Engine, ItemStatus, RunStore
from dialogforge.engine.store import migrations, schema_version
from dialogforge.testing.fake_server import FakeServer

FIXTURES = Path(__file__).parent / "fixtures"


def old_store(tmp_path: Path) -> Path:
    """The store that dialogforge wrote before versioning (checked in as SQL), with its output file."""
    path = tmp_path / "store.sqlite"
    sql = (FIXTURES / "store_v0.sql").read_text().replace("@DIR@", str(tmp_path))
    db = sqlite3.connect(path)
    db.executescript(sql)
    db.close()
    (tmp_path / "out.jsonl").write_bytes((FIXTURES / "store_v0.out.jsonl").read_bytes())
    return path


def test_migrations_are_numbered_in_order_and_a_new_store_is_at_the_latest():
    numbers = [n for n, _, _ in migrations.MIGRATIONS]
    assert numbers == sorted(set(numbers)) and numbers[0] == 1
    names = [name for _, name, _ in migrations.MIGRATIONS]
    assert all(name.startswith(f"m{n:03d}_") for n, name in zip(numbers, names))


def test_new_store_is_at_the_latest_version(tmp_path):
    st = RunStore(tmp_path / "s.sqlite")
    assert st.db.execute("PRAGMA user_version").fetchone()[0] == schema_version() >= 3
    assert st.migrated == [name for _, name, _ in migrations.MIGRATIONS]
    st.close()
    again = RunStore(tmp_path / "s.sqlite")
    assert again.migrated == []  # nothing to do the second time
    again.close()


async def test_a_store_written_before_versioning_is_migrated_and_resumes(tmp_path):
    path = old_store(tmp_path)
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 0
    st = RunStore(path)
    assert "m002_run_identity_and_crash" in st.migrated and st.db.execute("PRAGMA user_version").fetchone()[0] \
        == schema_version()
    info = st.find_run("t-4c8e394023")
    assert info is not None and (info.done, info.failed, info.status) == (3, 1, "finished")
    assert st.item_statuses(info.run_id) == {"p0": ItemStatus.DONE, "p1": "done", "p2": "done", "p3": "failed"}
    assert len(list(st.calls(info.run_id))) == 3

    calls = []

    async def process(item, ctx):
        calls.append(ctx.item_id)
        r = await ctx.chat([{"role": "user", "content": item["prompt"]}])
        return {"id": ctx.item_id, "response": r.text}

    items = [(f"p{i}", {"prompt": f"question number {i}"}) for i in range(5)]
    async with FakeServer() as srv:
        eng = Engine.from_dict({"endpoints": {"main": {"base_url": srv.base_url, "model": "m"}}}, store=path)
        res = await eng.run(name="t", run_id="t-4c8e394023", items=items, process=process,
                            output=tmp_path / "out.jsonl", progress=False)
        assert srv.count == 1  # only p4 is new; p0-p2 done, p3 failed earlier
        await eng.aclose()
    # the old calls still serve as the cache
    (key,) = eng.store.db.execute("SELECT cache_key FROM calls WHERE item_id='p0'").fetchone()
    assert eng.store.lookup(key)["choices"][0]["message"]["content"].startswith("Reply ")
    assert (res.done, res.skipped, res.skipped_failed) == (1, 3, 1) and calls == ["p4"]
    lines = (tmp_path / "out.jsonl").read_bytes()
    assert lines.startswith((FIXTURES / "store_v0.out.jsonl").read_bytes()) and lines.count(b"\n") == 4


def test_a_store_from_a_newer_dialogforge_is_refused_in_one_line(tmp_path):
    path = tmp_path / "s.sqlite"
    RunStore(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {schema_version() + 5}")
    db.close()
    with pytest.raises(DialogforgeError, match="written by a newer dialogforge"):
        RunStore(path)


def test_a_failing_migration_leaves_the_store_at_its_old_version(tmp_path, monkeypatch):
    path = old_store(tmp_path)

    def broken(db):
        db.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("boom")

    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS[:1], (2, "m002_broken", broken)])
    with pytest.raises(RuntimeError):
        RunStore(path)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    assert not db.execute("SELECT name FROM sqlite_master WHERE name='half_done'").fetchall()
