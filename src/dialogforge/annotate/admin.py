"""The admin page: progress per trace and annotator, agreement, leases held, invites, export."""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select

from . import agreement, auth, db, export, work
from .web import check_post, page, project, require_admin


def overview(s: Any, n_required: int) -> dict[str, Any]:
    now = db.now()
    traces = list(s.scalars(select(db.Trace).order_by(db.Trace.id)))
    slots = list(s.scalars(select(db.Slot)))
    per_trace: dict[int, Counter] = defaultdict(Counter)
    per_user: dict[int, Counter] = defaultdict(Counter)
    for x in slots:
        state = "done" if x.done_at else ("held" if x.lease_expires >= now else "expired")
        per_trace[x.trace_id][state] += 1
        per_user[x.user_id][state] += 1
    answers = dict(s.execute(select(db.Answer.user_id, func.count()).group_by(db.Answer.user_id)).all())
    users = list(s.scalars(select(db.User).order_by(db.User.username)))
    return {
        "traces": [{"name": t.name, "theme": t.theme, "turns": t.n_turns, "done": per_trace[t.id]["done"],
                    "held": per_trace[t.id]["held"], "expired": per_trace[t.id]["expired"], "need": n_required}
                   for t in traces],
        "users": [{"name": u.username, "admin": u.is_admin, "active": u.pw_hash is not None,
                   "done": per_user[u.id]["done"], "held": per_user[u.id]["held"],
                   "answers": answers.get(u.id, 0)} for u in users],
    }


def routes(app: FastAPI) -> None:
    @app.get("/admin", response_class=HTMLResponse)
    async def admin_page(request: Request) -> Response:
        require_admin(request)
        return _render(request)

    @app.post("/admin/invite", response_class=HTMLResponse)
    async def invite(request: Request) -> Response:
        require_admin(request)
        form = await check_post(request)
        name = str(form.get("username", "")).strip()
        p = project(request)
        try:
            with p.Session.begin() as s:
                token = auth.create_invite(s, p.secret, name)
        except ValueError as e:
            return _render(request, error=str(e), status=400)
        base = f"{request.url.scheme}://{request.headers['host']}"
        return _render(request, invite_link=f"{base}/invite/{token}", invite_name=name)

    @app.get("/admin/export.jsonl")
    async def export_items(request: Request, min_annotators: int | None = None) -> Response:
        require_admin(request)
        p = project(request)
        rep = export.ExportReport()
        with p.Session() as s:
            groups = export.collect(s, min_annotators or p.settings.annotators, rep)
        body = "".join(json.dumps(it, ensure_ascii=False) + "\n" for items in groups.values() for it in items)
        return Response(body, media_type="application/x-ndjson",
                        headers={"content-disposition": 'attachment; filename="reward_items.jsonl"'})


def _render(request: Request, status: int = 200, **extra: Any) -> Response:
    p = project(request)
    with p.Session() as s:
        data = overview(s, p.settings.annotators)
        alpha = agreement.alpha(s)
        items = agreement.per_item(s)
        held = work.leases(s)
        prog = work.progress(s, None, p.settings)
        rep = export.ExportReport()
        export.collect(s, p.settings.annotators, rep)
    return page(request, "admin.html", status=status, data=data, alpha=alpha, items=items[:40],
                n_items=len(items), leases=held, progress=prog, now=db.now(), report=rep.as_dict(), **extra)
