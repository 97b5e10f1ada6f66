"""The README's ```bash blocks, run in order in one scratch folder, so the README cannot drift from the code.

Each block runs with `bash -e` against the loopback fake server (every `http://localhost:8000/v1` in the
README is pointed at it) and the embedded model (commands without --base-url). A block that CI cannot
run is preceded by the line `<!-- readme-test: skip (reason) -->` and is reported as skipped, by name.
Blocks chain: later ones read what earlier ones wrote, so they run in README order.
"""
from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from dialogforge.testing.fake_server import FakeServer

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
SKIP = re.compile(r"^<!-- readme-test: skip \((?P<reason>.+)\) -->$")
SERVER_URL = "http://localhost:8000/v1"


@dataclass
class Block:
    index: int
    line: int  # of the opening fence, 1-based
    code: str
    skip: str | None

    @property
    def name(self) -> str:
        first = next((ln.strip() for ln in self.code.splitlines() if ln.strip() and not ln.startswith("#")), "")
        return f"README block {self.index} (line {self.line}: {first[:60]})"


def readme_blocks(text: str) -> list[Block]:
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```bash":
            start = i
            i += 1
            body = []
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            before = next((lines[j].strip() for j in range(start - 1, -1, -1) if lines[j].strip()), "")
            m = SKIP.match(before)
            blocks.append(Block(len(blocks) + 1, start + 1, "\n".join(body) + "\n", m["reason"] if m else None))
        i += 1
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))

# A scripted model for the agent example: for `median-fix`, the first reply of every other rollout fixes the
# bug and submits, the others submit untouched code, so repeats differ in reward and `agent pairs` has pairs.
FIX = """```bash
python3 - <<'PY'
import pathlib
p = pathlib.Path("stats.py")
p.write_text(p.read_text().replace("    return ordered[mid]\\n",
    "    if len(ordered) % 2:\\n        return ordered[mid]\\n    return (ordered[mid - 1] + ordered[mid]) / 2\\n"))
PY
echo SUBMIT_FINAL_ANSWER
```"""
SUBMIT = "```bash\necho SUBMIT_FINAL_ANSWER\n```"


def scripted_model():
    turn = itertools.count()

    def reply(body: dict) -> str | None:
        msgs = body.get("messages") or []
        text = " ".join(str(m.get("content") or "") for m in msgs)
        if "SUBMIT_FINAL_ANSWER" not in text or body.get("response_format"):
            return None  # everything else: the fake server's usual replies
        if "median" in text and sum(m.get("role") == "assistant" for m in msgs) == 0:
            return FIX if next(turn) % 2 == 0 else SUBMIT
        return SUBMIT
    return reply


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """One folder for the whole README: a copy of examples/, and .venv pointing at this interpreter's."""
    d = tmp_path_factory.mktemp("readme")
    shutil.copytree(REPO / "examples", d / "examples")
    (d / ".venv").symlink_to(Path(sys.prefix))
    return d


@pytest.fixture(scope="module")
def server():
    with FakeServer(responder=scripted_model()) as srv:
        yield srv


_failed: list[str] = []


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: f"block{b.index:02d}-line{b.line}")
def test_readme_block(block: Block, scratch: Path, server: FakeServer):
    if block.skip:
        pytest.skip(f"{block.name}: {block.skip}")
    if _failed:
        pytest.skip(f"{block.name}: an earlier block failed ({_failed[0]})")
    code = block.code.replace(SERVER_URL, server.base_url)
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", ""), "COLUMNS": "120",
           "DIALOGFORGE_HOME": str(scratch / ".dialogforge")}
    r = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", code], cwd=scratch, env=env, capture_output=True,
                       text=True, timeout=900)
    if r.returncode != 0:
        _failed.append(block.name)
        tail = "\n".join((r.stdout + r.stderr).splitlines()[-25:])
        pytest.fail(f"{block.name} failed (exit {r.returncode}) in {scratch}:\n{block.code}\n--- output ---\n{tail}",
                    pytrace=False)


def test_blocks_found_and_skips_give_a_reason():
    assert len(BLOCKS) >= 8
    assert all(b.skip is None or b.skip.strip() for b in BLOCKS)
    text = README.read_text(encoding="utf-8")
    markers = sum(1 for ln in text.splitlines() if SKIP.match(ln.strip()))
    assert markers == sum(1 for b in BLOCKS if b.skip)  # every marker line sits right above a bash block


def test_every_shell_example_is_a_bash_block():
    """An example fenced as sh, shell or console, or with no language, would drop out of the run above unseen."""
    opening, inside = [], False
    for n, ln in enumerate(README.read_text(encoding="utf-8").splitlines(), 1):
        if ln.strip().startswith("```"):
            if not inside:
                opening.append((n, ln.strip()[3:].strip()))
            inside = not inside
    assert not inside, "a code fence is never closed"
    odd = [(n, lang) for n, lang in opening if lang not in {"bash", "python", "yaml", "toml", "json", "text"}]
    assert not odd, f"README lines with a fence the README test does not run or know: {odd}"
    assert sum(lang == "bash" for _, lang in opening) == len(BLOCKS)
