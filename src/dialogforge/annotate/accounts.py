"""Account chores done from the command line (the machine's operator is trusted)."""
from __future__ import annotations

import secrets

from sqlalchemy import delete, select

from ..engine.errors import DialogforgeError
from . import db
from .auth import hash_password
from .project import Project


def reset_password(project: Project, username: str) -> str:
    password = secrets.token_urlsafe(15)
    with project.Session.begin() as s:
        user = s.scalar(select(db.User).where(db.User.username == username))
        if user is None:
            raise DialogforgeError(f"no user {username!r} in {project.root}")
        user.pw_hash = hash_password(password)
        s.execute(delete(db.Session).where(db.Session.user_id == user.id))
    return password
