"""Passwords (argon2id), server-side sessions, one-time invites, login rate limiting, CSRF tokens.

Tokens handed to browsers (session cookies, invite links) are random; the database keeps only their HMAC under
the per-install secret, so a copy of the database alone opens no session and no invite.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session as DBSession

from . import db

_hasher = PasswordHasher()   # argon2id with the library's recommended parameters
_DUMMY = _hasher.hash("dialogforge-timing-equaliser")
MIN_PASSWORD = 10


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(pw_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(pw_hash or _DUMMY, password) and pw_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def token_hash(secret: bytes, token: str) -> str:
    return hmac.new(secret, token.encode(), hashlib.sha256).hexdigest()


def password_problem(password: str, username: str) -> str | None:
    if len(password) < MIN_PASSWORD:
        return f"the password needs at least {MIN_PASSWORD} characters"
    if password.lower() == username.lower():
        return "the password must differ from the user name"
    return None


# ---- sessions ----

def new_session(s: DBSession, secret: bytes, user_id: int, hours: float) -> str:
    s.execute(delete(db.Session).where(db.Session.expires_at < db.now()))   # expired ones go
    token = secrets.token_urlsafe(32)
    s.add(db.Session(token_hash=token_hash(secret, token), user_id=user_id, csrf=secrets.token_urlsafe(24),
                     expires_at=db.now() + dt.timedelta(hours=hours)))
    return token


def session_for(s: DBSession, secret: bytes, token: str | None) -> tuple[db.User, db.Session] | None:
    if not token:
        return None
    row = s.get(db.Session, token_hash(secret, token))
    if row is None or row.expires_at < db.now():
        return None
    user = s.get(db.User, row.user_id)
    return (user, row) if user is not None else None


def end_session(s: DBSession, secret: bytes, token: str | None) -> None:
    if token:
        s.execute(delete(db.Session).where(db.Session.token_hash == token_hash(secret, token)))


# ---- invites ----

def check_username(name: str) -> str:
    """A user name: 1-64 letters, digits, '-', '_' or '.' (ValueError otherwise)."""
    if not name or len(name) > 64 or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ValueError(f"user name {name!r}: a user name is 1-64 letters, digits, '-', '_' or '.'")
    return name


def create_invite(s: DBSession, secret: bytes, username: str, days: float = 7) -> str:
    """A new annotator account without a password, and the one-time token that lets them set it."""
    check_username(username)
    user = s.scalar(select(db.User).where(db.User.username == username))
    if user is None:
        user = db.User(username=username, pw_hash=None, is_admin=False)
        s.add(user)
        s.flush()
    elif user.pw_hash is not None:
        raise ValueError(f"user {username!r} already has an account")
    token = secrets.token_urlsafe(32)
    s.add(db.Invite(token_hash=token_hash(secret, token), user_id=user.id,
                    expires_at=db.now() + dt.timedelta(days=days)))
    return token


def invite_user(s: DBSession, secret: bytes, token: str) -> db.User | None:
    inv = s.get(db.Invite, token_hash(secret, token))
    if inv is None or inv.used_at is not None or inv.expires_at < db.now():
        return None
    return s.get(db.User, inv.user_id)


def use_invite(s: DBSession, secret: bytes, token: str, pw_hash: str) -> db.User | None:
    """Set the (already hashed) password and burn the invite, in the caller's transaction (a second use finds
    it used)."""
    inv = s.get(db.Invite, token_hash(secret, token), with_for_update=True)
    if inv is None or inv.used_at is not None or inv.expires_at < db.now():
        return None
    user = s.get(db.User, inv.user_id)
    if user is None:
        return None
    inv.used_at = db.now()
    user.pw_hash = pw_hash
    return user


# ---- login rate limit ----

def too_many_failures(s: DBSession, keys: list[str], window_s: int, limit: int) -> bool:
    since = db.now() - dt.timedelta(seconds=window_s)
    for key in keys:
        n = s.scalar(select(func.count()).select_from(db.LoginFailure)
                     .where(db.LoginFailure.key == key, db.LoginFailure.at >= since))
        if (n or 0) >= limit:
            return True
    return False


def record_failure(s: DBSession, keys: list[str]) -> None:
    for key in keys:
        s.add(db.LoginFailure(key=key))
    s.execute(delete(db.LoginFailure).where(db.LoginFailure.at < db.now() - dt.timedelta(days=1)))
