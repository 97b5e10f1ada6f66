"""A real browser (Debian's chromium driven by Playwright) logs in, annotates a trace with the keyboard, undoes an
answer, edits another, and the export holds exactly what was clicked. Screenshots: the test's tmp dir, or docs/ with
DIALOGFORGE_SCREENSHOTS=docs."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from annotate_helpers import EVIL, start_server
from sqlalchemy import select

from dialogforge.annotate import db, work
from dialogforge.annotate.export import CD, CR, FA, MN, export
from dialogforge.annotate.importer import import_files
from dialogforge.annotate.project import Settings, open_project

REPO = Path(__file__).resolve().parents[2]
# The screenshots in docs/ are remade with DIALOGFORGE_SCREENSHOTS=docs; otherwise they go to the test's tmp dir.
SHOTS_ENV = "DIALOGFORGE_SCREENSHOTS"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed "
                                "(make test installs it: apt-get install -y chromium)")

# what the browser user clicks, per turn of examples/annotate/code_demo.json: (accepted, reject_all, help)
CLICKED = {0: ([0, 2], False, True), 1: ([0], False, True), 2: ([], False, True), 3: ([0, 1], False, True),
           4: ([], False, False), 5: ([0], False, True)}
# the first pass differs on two turns: turn 1 is later edited, turn 5 undone and answered again
FIRST_PASS = {**CLICKED, 1: ([1], False, True), 5: ([], True, False)}


def _other_annotators(proj, trace_id):
    """Two annotators who finished before (through the Python API), so agreement has something to measure."""
    for name in ("api1", "api2"):
        with proj.Session.begin() as s:
            u = db.User(username=name, pw_hash=None)
            s.add(u)
        assert work.assign(proj.Session, u.id, proj.settings) == trace_id
        with proj.Session.begin() as s:
            for t in work.asked_turns(s, trace_id):
                acc = [0] if t.candidates else []
                work.save_answer(s, u.id, t, work.Submitted(bool(t.candidates), acc, False), proj.settings)


def _keys(page, *keys):
    page.wait_for_selector("html[data-keys=ready]", state="attached")   # the shortcuts are bound
    for k in keys:
        page.keyboard.press(k)


def test_browser_annotation_undo_edit_export(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    proj = open_project(tmp_path / "proj", settings=Settings(annotators=3))
    import_files(proj, [REPO / "examples" / "annotate" / "code_demo.json"])
    (tmp_path / "evil.json").write_text(json.dumps([{"observation": {"time": "1767225600", "event": EVIL},
                                                    "agent_response": {"candidate_task": [EVIL]}}]))
    import_files(proj, [tmp_path / "evil.json"])
    with proj.Session() as s:
        demo_id = s.scalar(select(db.Trace.id).where(db.Trace.name == "code_demo"))
    _other_annotators(proj, demo_id)
    server, thread, url = start_server(proj)
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                shots = REPO / "docs" if os.environ.get(SHOTS_ENV) == "docs" else tmp_path
                _drive(browser, url, proj.new_admin_password, demo_id, shots)
                assert (shots / "annotate-page.png").stat().st_size > 10_000
            finally:
                browser.close()
    finally:
        server.should_exit = True
        thread.join(10)
    rep = export(proj.Session, tmp_path / "out", test_size=0.0, min_annotators=3)
    items = [json.loads(x) for x in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    with proj.Session() as s:
        turns = {t.idx: t for t in s.scalars(select(db.Turn).where(db.Turn.trace_id == demo_id))}
    expected = []
    for idx in range(6):
        acc, _, help_ = CLICKED[idx]
        for j, task in enumerate(turns[idx].candidates):
            expected.append((len(turns[idx].candidates) and task, j in acc))
        expected.append((None, not help_))
    mine = [(it["pred_task"], it["annotation"][2]) for it in items]      # the browser user holds the third place
    assert mine == expected
    # majority with the two API annotators (who accept candidate 0 and say help was needed where proposals exist)
    by_task = {it["pred_task"]: it["category"] for it in items if it["pred_task"]}
    assert by_task[turns[0].candidates[0]] == CD and by_task[turns[0].candidates[2]] == FA
    nulls = [it["category"] for it in items if it["pred_task"] is None]
    assert nulls == [MN, MN, CR, MN, CR, MN]
    assert rep.traces_used == 1 and rep.traces_incomplete == 1
    proj.close()


def _drive(browser, url, admin_password, demo_id, shots: Path):
    # the admin invites an annotator from the admin page
    admin = browser.new_page(viewport={"width": 1280, "height": 900})
    admin.goto(url + "/login")
    admin.fill("input[name=username]", "admin")
    admin.fill("input[name=password]", admin_password)
    admin.click("button[type=submit]")
    admin.wait_for_url(url + "/admin")
    admin.fill("form.row input[name=username]", "dana")
    admin.click("form.row button")
    link = admin.inner_text("#invite-link")
    assert link.startswith(url + "/invite/")

    ctx = browser.new_context(viewport={"width": 1280, "height": 860})
    page = ctx.new_page()
    page.goto(link)
    page.fill("input[name=password]", "a long enough secret")
    page.fill("input[name=password2]", "a long enough secret")
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")
    page.click("#next")
    page.wait_for_url(f"{url}/t/{demo_id}/0")
    for idx in range(6):
        page.wait_for_url(f"{url}/t/{demo_id}/{idx}")
        if idx == 3:
            page.screenshot(path=str(shots / "annotate-page.png"), full_page=True)
        acc, reject, help_ = FIRST_PASS[idx]
        _keys(page, *[str(j + 1) for j in acc], *(["0"] if reject else []), "y" if help_ else "n", "Enter")
    page.wait_for_selector("text=Trace finished")
    # undo the last answer: back on turn 5, nothing ticked; answer it again
    _keys(page, "u")
    page.wait_for_url(f"{url}/t/{demo_id}/5")
    assert not page.is_checked("#reject_all") and not page.is_checked("#help_no")
    _keys(page, "1", "y", "Enter")
    page.wait_for_selector("text=Trace finished")
    # edit turn 1 (the second): it shows the earlier answer; change candidate 2 to candidate 1
    page.goto(f"{url}/t/{demo_id}/1")
    assert page.is_checked("input[data-key='2']") and page.is_checked("#help_yes")
    _keys(page, "2", "1", "Enter")
    page.wait_for_selector("text=Trace finished")
    # the next trace carries <script> and onerror= in its event and candidate: shown as text, never run
    page.click("#next")
    page.wait_for_selector("text=window.pwned=1")
    assert page.evaluate("window.pwned === undefined")
    assert page.locator("img").count() == 0

    admin.goto(url + "/admin")
    assert admin.inner_text("#alpha") != "not yet defined"
    admin.screenshot(path=str(shots / "annotate-admin.png"), full_page=True)
