"""Annotation fixtures: a project with small hand-made traces and a live server on a loopback port."""
from __future__ import annotations

from typing import Iterator

import pytest

pytest.importorskip("fastapi", reason="the annotate extra is not installed (pip install 'dialogforge[annotate]')")

from annotate_helpers import Live, start_server, write_traces  # noqa: E402

from dialogforge.annotate.importer import import_files  # noqa: E402
from dialogforge.annotate.project import Project, Settings, open_project  # noqa: E402


@pytest.fixture(scope="session")
def pg_server():
    from pg_server import PgServer
    try:
        server = PgServer()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """None (SQLite in the project folder) or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("pg_server").new_database()


@pytest.fixture
def project(tmp_path) -> Iterator[Project]:
    proj = open_project(tmp_path / "proj", settings=Settings(annotators=3, lease_minutes=30))
    import_files(proj, write_traces(tmp_path / "traces", 4))
    yield proj
    proj.close()


@pytest.fixture
def live(project) -> Iterator[Live]:
    server, thread, url = start_server(project)
    yield Live(project, url, project.new_admin_password or "")
    server.should_exit = True
    thread.join(10)
