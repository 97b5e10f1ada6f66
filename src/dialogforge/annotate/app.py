"""The annotation web app: log-in, invites, the annotation page, the guidelines page (admin page: admin.py)."""
from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import select
from sqlalchemy.orm import Session as DBSession
from starlette.concurrency import run_in_threadpool
from starlette.middleware.trustedhost import TrustedHostMiddleware

from . import admin, auth, db, work
from .project import Project
from .web import (COOKIE, HERE, SecurityHeaders, check_post, client_ip, load_user, page, project, redirect,
                  require_user)

HISTORY_SHOWN = 8   # newest events always visible; older ones fold away


def create_app(proj: Project, allowed_hosts: list[str] | None = None, secure_cookies: bool = False) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.project = proj
    app.state.secure_cookies = secure_cookies
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    # Refuse any Host we do not serve: a DNS-rebinding page would arrive with its own host name.
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts or ["127.0.0.1", "localhost", "::1"])
    app.add_middleware(SecurityHeaders)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 303 and exc.headers:
            return RedirectResponse(exc.headers["Location"], status_code=303)
        return page(request, "error.html", status=exc.status_code, message=exc.detail)

    _auth_routes(app)
    _work_routes(app)
    admin.routes(app)
    return app


def _set_cookie(request: Request, resp: Response, token: str) -> None:
    p = project(request)
    resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=request.app.state.secure_cookies,
                    max_age=int(p.settings.session_hours * 3600), path="/")


def _try_login(p: Project, name: str, password: str, keys: list[str]) -> tuple[str, db.User | None, str | None]:
    # Three short steps, so the slow hash is checked while no database lock is held.
    with p.Session.begin() as s:
        if auth.too_many_failures(s, keys, p.settings.login_window_s, p.settings.login_max):
            return "limited", None, None
        user = s.scalar(select(db.User).where(db.User.username == name))
    ok = auth.verify_password(user.pw_hash if user else None, password)
    with p.Session.begin() as s:
        if not ok or user is None:
            auth.record_failure(s, keys)
            return "failed", None, None
        return "ok", user, auth.new_session(s, p.secret, user.id, p.settings.session_hours)


def _accept_invite(p: Project, token: str, password: str) -> str | None:
    pw_hash = auth.hash_password(password)           # outside the transaction: no lock held while hashing
    with p.Session.begin() as s:
        user = auth.use_invite(s, p.secret, token, pw_hash)
        return None if user is None else auth.new_session(s, p.secret, user.id, p.settings.session_hours)


def _auth_routes(app: FastAPI) -> None:
    @app.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request) -> Response:
        return page(request, "login.html", user=None)

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await check_post(request, need_csrf=False)
        name = str(form.get("username", "")).strip()
        keys = [f"user:{name.lower()}", f"ip:{client_ip(request)}"]
        # argon2 is slow on purpose: verify in a worker thread, never on the event loop every page shares
        outcome, user, token = await run_in_threadpool(_try_login, project(request), name,
                                                       str(form.get("password", "")), keys)
        if outcome == "limited":
            return page(request, "login.html", status=429, user=None,
                        error="Too many failed log-ins. Wait a few minutes and try again.")
        if user is None or token is None:
            return page(request, "login.html", status=401, user=None, error="Wrong user name or password.")
        resp = redirect("/admin" if user.is_admin else "/")
        _set_cookie(request, resp, token)
        return resp

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        require_user(request)
        await check_post(request)
        p = project(request)
        with p.Session.begin() as s:
            auth.end_session(s, p.secret, request.cookies.get(COOKIE))
        resp = redirect("/login")
        resp.delete_cookie(COOKIE, path="/")
        return resp

    @app.get("/invite/{token}", response_class=HTMLResponse)
    async def invite_form(request: Request, token: str) -> Response:
        p = project(request)
        with p.Session() as s:
            user = auth.invite_user(s, p.secret, token)
        if user is None:
            return page(request, "error.html", status=404, user=None, message="This invitation is used or expired.")
        return page(request, "invite.html", user=None, name=user.username, token=token)

    @app.post("/invite/{token}")
    async def invite_accept(request: Request, token: str) -> Response:
        form = await check_post(request, need_csrf=False)
        p = project(request)
        pw, pw2 = str(form.get("password", "")), str(form.get("password2", ""))
        with p.Session() as s:
            pending = auth.invite_user(s, p.secret, token)
        if pending is None:
            return page(request, "error.html", status=404, user=None, message="This invitation is used or expired.")
        problem = auth.password_problem(pw, pending.username) or (None if pw == pw2 else "the passwords differ")
        if problem:
            return page(request, "invite.html", status=400, user=None, name=pending.username, token=token,
                        error=problem)
        session_token = await run_in_threadpool(_accept_invite, p, token, pw)
        if session_token is None:
            return page(request, "error.html", status=404, user=None, message="This invitation is used or expired.")
        resp = redirect("/")
        _set_cookie(request, resp, session_token)
        return resp

    @app.get("/guidelines", response_class=HTMLResponse)
    async def guidelines(request: Request) -> Response:
        load_user(request)
        return page(request, "guidelines.html")


def _work_routes(app: FastAPI) -> None:
    @app.get("/", response_class=HTMLResponse)
    async def home(request: Request) -> Response:
        user = require_user(request)
        p = project(request)
        with p.Session() as s:
            prog = work.progress(s, user.id, p.settings)
            mine = work.own_open_slot(s, user.id)
        return page(request, "home.html", progress=prog, open_trace=mine.trace_id if mine else None)

    @app.post("/next")
    async def next_trace(request: Request) -> Response:
        user = require_user(request)
        await check_post(request)
        p = project(request)
        trace_id = work.assign(p.Session, user.id, p.settings)
        if trace_id is None:
            return page(request, "home.html", progress=_progress(request, user.id), open_trace=None,
                        message="No trace needs you right now. Thank you!")
        return redirect(f"/t/{trace_id}")

    @app.get("/t/{trace_id}", response_class=HTMLResponse)
    async def trace_start(request: Request, trace_id: int) -> Response:
        user = require_user(request)
        p = project(request)
        with p.Session.begin() as s:
            slot = _holder(s, user.id, trace_id, p)
            turns = work.asked_turns(s, trace_id)
            answered = work.answers_of(s, user.id, trace_id)
            todo = next((t.idx for t in turns if t.id not in answered), None)
            done = slot.done_at is not None
        if todo is not None:
            return redirect(f"/t/{trace_id}/{todo}")
        return page(request, "trace_done.html", trace_id=trace_id, done=done,
                    progress=_progress(request, user.id), turns=turns, first=turns[0].idx if turns else 0)

    @app.get("/t/{trace_id}/{idx}", response_class=HTMLResponse)
    async def turn_page(request: Request, trace_id: int, idx: int) -> Response:
        user = require_user(request)
        return _render_turn(request, user.id, trace_id, idx)

    @app.post("/t/{trace_id}/{idx}")
    async def answer(request: Request, trace_id: int, idx: int) -> Response:
        user = require_user(request)
        form = await check_post(request)
        p = project(request)
        help_val = form.get("help")
        try:
            accepted = [int(str(x)) for x in form.getlist("cand")]
        except ValueError:
            raise HTTPException(400, "bad candidate index") from None
        reject_all = form.get("reject_all") == "1"
        with p.Session.begin() as s:
            turn = s.scalar(select(db.Turn).where(db.Turn.trace_id == trace_id, db.Turn.idx == idx,
                                                   db.Turn.asked.is_(True)))
            if turn is None:
                raise HTTPException(404, "no such turn")
            problem = None
            if help_val not in ("yes", "no"):
                problem = "Answer “did the user need help here?” (Y or N)."
            elif turn.candidates and not accepted and not reject_all:
                problem = "Tick the acceptable candidates, or choose “reject all” (0)."
            if problem is None:
                try:
                    work.save_answer(s, user.id, turn, work.Submitted(help_val == "yes", accepted, reject_all),
                                     p.settings)
                except work.NotYours:
                    raise HTTPException(409, "You hold no place on this trace (a lease that expired goes to the "
                                             "next annotator); this answer was not saved. Ask for the next "
                                             "trace.") from None
                except ValueError as e:
                    raise HTTPException(400, str(e)) from None
        if problem:
            return _render_turn(request, user.id, trace_id, idx, error=problem, status=400)
        return redirect(f"/t/{trace_id}")

    @app.post("/undo/{trace_id}")
    async def undo(request: Request, trace_id: int) -> Response:
        user = require_user(request)
        await check_post(request)
        p = project(request)
        with p.Session.begin() as s:
            try:
                idx = work.undo_last(s, user.id, trace_id, p.settings)
            except work.NotYours:
                raise HTTPException(404, "You hold no place on this trace.") from None
        return redirect(f"/t/{trace_id}/{idx}" if idx is not None else f"/t/{trace_id}")


def _holder(s: DBSession, user_id: int, trace_id: int, p: Project) -> db.Slot:
    try:
        return work.holder_slot(s, user_id, trace_id, p.settings)
    except work.NotYours:
        # Same answer whether the trace exists or not: no way to probe others' work.
        raise HTTPException(404, "You hold no place on this trace.") from None


def _progress(request: Request, user_id: int) -> dict[str, int]:
    p = project(request)
    with p.Session() as s:
        return work.progress(s, user_id, p.settings)


def _render_turn(request: Request, user_id: int, trace_id: int, idx: int, error: str | None = None,
                 status: int = 200) -> Response:
    p = project(request)
    with p.Session.begin() as s:
        _holder(s, user_id, trace_id, p)
        trace = s.get(db.Trace, trace_id)
        all_turns = list(s.scalars(select(db.Turn).where(db.Turn.trace_id == trace_id).order_by(db.Turn.idx)))
        turn = next((t for t in all_turns if t.idx == idx and t.asked), None)
        if turn is None or trace is None:
            raise HTTPException(404, "no such turn")
        answered = work.answers_of(s, user_id, trace_id)
        asked = [t for t in all_turns if t.asked]
        history = all_turns[: idx + 1]
        prog = work.progress(s, user_id, p.settings)
    folded, shown = history[:-HISTORY_SHOWN], history[-HISTORY_SHOWN:]
    return page(request, "annotate.html", status=status, trace=trace, turn=turn, folded=folded, shown=shown,
                asked=asked, answered={t.idx for t in asked if t.id in answered},
                answer=answered.get(turn.id), error=error, progress=prog,
                position=[t.idx for t in asked].index(idx) + 1)
