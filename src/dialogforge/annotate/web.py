"""Shared pieces of the web app: templates, the request's user, the Origin + CSRF check, security headers."""
from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import auth, db
from .project import Project

COOKIE = "df_session"
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))   # autoescape is on for .html templates


def _fmt_time(value: str) -> str:
    try:
        return dt.datetime.fromtimestamp(float(value), dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):
        return value


templates.env.filters["ts"] = _fmt_time

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
           (b"referrer-policy", b"same-origin"), (b"x-frame-options", b"DENY"), (b"cache-control", b"no-store")]


class SecurityHeaders:
    """Adds CSP and friends to every response (a pure ASGI middleware: it does not buffer bodies)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + HEADERS
            await send(message)
        await self.app(scope, receive, send_with_headers)


def project(request: Request) -> Project:
    return request.app.state.project


def page(request: Request, template_name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    ctx.setdefault("user", getattr(request.state, "user", None))
    ctx.setdefault("csrf", getattr(request.state, "csrf", ""))
    return templates.TemplateResponse(request, template_name, ctx, status_code=status)


def same_origin(request: Request) -> bool:
    """The POST comes from a page of this server: its Origin (or, lacking one, its Referer) names our host."""
    host = request.headers.get("host", "")
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return False
    parts = urlsplit(source)
    return parts.scheme in ("http", "https") and parts.netloc == host


async def check_post(request: Request, need_csrf: bool = True) -> FormData:
    """Every state change: same origin, and (once logged in) the session's CSRF token in the form."""
    if not same_origin(request):
        raise HTTPException(403, "cross-origin request refused")
    form = await request.form()
    if need_csrf:
        token = str(form.get("csrf", ""))
        if not secrets.compare_digest(token, getattr(request.state, "csrf", "") or "\0"):
            raise HTTPException(403, "missing or wrong CSRF token; reload the page")
    return form


def load_user(request: Request) -> None:
    p = project(request)
    with p.Session() as s:
        found = auth.session_for(s, p.secret, request.cookies.get(COOKIE))
    request.state.user, request.state.csrf = (found[0], found[1].csrf) if found else (None, "")


def require_user(request: Request) -> db.User:
    load_user(request)
    if request.state.user is None:
        raise HTTPException(303, headers={"Location": "/login"})
    return request.state.user


def require_admin(request: Request) -> db.User:
    user = require_user(request)
    if not user.is_admin:
        raise HTTPException(403, "admins only")
    return user


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "?"
