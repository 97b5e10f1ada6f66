"""Runs a task's Python evaluator (`package.module:function`) in its own process, inside the sandbox.

    python -m dialogforge.workflows.agent.envs.pyeval MODULE:FUNCTION TASK_JSON WORKDIR BASELINE

The function is called with the keyword arguments it declares among `task` (a `Task`), `workdir`
and `baseline` (`pathlib.Path`); it returns an `EvalResult`, a dict of its fields or a bool
(success), and may be `async`. The result is printed as one marked JSON line.
"""
from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import sys
import traceback
from dataclasses import asdict
from pathlib import Path

MARK = "DF-EVALUATOR-RESULT "


def main(argv: list[str]) -> int:
    from .base import EvalResult
    from ..tasks import Task

    spec, task_file, workdir, baseline = argv
    task = Task(**json.loads(Path(task_file).read_text()))
    mod_name, _, attr = spec.partition(":")
    fn = getattr(importlib.import_module(mod_name), attr)
    offered = {"task": task, "workdir": Path(workdir), "baseline": Path(baseline), "env": None}
    params = inspect.signature(fn).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        offered = {k: v for k, v in offered.items() if k in params}
    res = fn(**offered)
    if inspect.isawaitable(res):
        res = asyncio.run(res)  # type: ignore[arg-type]
    if isinstance(res, bool):
        res = EvalResult(success=res)
    elif isinstance(res, dict):
        res = EvalResult(**res)
    if not isinstance(res, EvalResult):
        print(f"evaluator {spec} returned {type(res).__name__}, not EvalResult, dict or bool", file=sys.stderr)
        return 2
    print(MARK + json.dumps(asdict(res), default=str), flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception as e:  # the evaluator's own crash: reported by the environment as an env_error
        traceback.print_exc(limit=3)
        print(f"evaluator raised {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(2)
