"""An annotation project: a folder with its database (or a PostgreSQL URL), its per-install secret and settings.

The first open creates the database, the secret (random, 0600, in the project folder: never in the repository)
and the admin account, whose generated password is returned once and never stored in clear.
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from ..engine.errors import DialogforgeError
from . import db
from .auth import hash_password

SECRET_FILE = "secret.key"
DB_FILE = "annotate.sqlite"
DB_ENV = "DIALOGFORGE_ANNOTATE_DB"


@dataclass
class Settings:
    annotators: int = 3                 # N annotators per trace
    lease_minutes: float = 30.0
    session_hours: float = 12.0
    login_window_s: int = 300           # login rate limit: at most `login_max` failures per window,
    login_max: int = 5                  # per user name and per client address


@dataclass
class Project:
    root: Path
    url: str
    engine: Engine
    Session: sessionmaker
    secret: bytes
    settings: Settings = field(default_factory=Settings)
    new_admin_password: str | None = None   # set only by the open that created the admin

    def close(self) -> None:
        self.engine.dispose()


def _load_secret(root: Path) -> bytes:
    path = root / SECRET_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    text = path.read_text().strip()
    if len(text) < 32:
        raise DialogforgeError(f"{path}: the secret is too short; delete the file to make a new one "
                               "(everyone will have to log in again)")
    return bytes.fromhex(text)


def _ensure_admin(Session: sessionmaker) -> str | None:
    with Session.begin() as s:
        if s.scalar(select(db.User.id).where(db.User.is_admin.is_(True)).limit(1)) is not None:
            return None
        password = secrets.token_urlsafe(15)
        s.add(db.User(username="admin", pw_hash=hash_password(password), is_admin=True))
        return password


def open_project(root: str | os.PathLike, db_url: str | None = None, settings: Settings | None = None,
                 create: bool = True) -> Project:
    root = Path(root)
    made = not root.exists()
    if made:
        if not create:
            raise DialogforgeError(f"{root}: no such annotation project (create it with `dialogforge annotate import`)")
        root.mkdir(parents=True)
    elif not root.is_dir():
        raise DialogforgeError(f"{root}: the project must be a folder")
    try:
        return _open(root, db_url, settings)
    except BaseException:
        if made:  # a database that cannot be used: no half-made project is left behind
            import shutil
            shutil.rmtree(root, ignore_errors=True)
        raise


def _open(root: Path, db_url: str | None, settings: Settings | None) -> Project:
    url = db_url or os.environ.get(DB_ENV) or db.sqlite_url(root / DB_FILE)
    try:
        engine = db.make_engine(url)
    except Exception as e:  # a malformed URL or a missing driver
        raise DialogforgeError(f"cannot use database {url!r}: {e}") from None
    try:
        db.migrate(engine)
    except DialogforgeError:
        raise
    except Exception as e:
        raise DialogforgeError(f"cannot open the annotation database {url!r}: {e.__class__.__name__}: "
                               f"{str(e).splitlines()[0]}") from None
    Session = db.sessionmaker_for(engine)
    secret = _load_secret(root)
    password = _ensure_admin(Session)
    return Project(root=root, url=url, engine=engine, Session=Session, secret=secret,
                   settings=settings or Settings(), new_admin_password=password)
