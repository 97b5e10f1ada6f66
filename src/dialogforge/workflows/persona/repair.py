"""``persona check --repair``: take a persona's set phrase off the answers where it recurs.

Real generated dialogues often close every answer with the same sentence, or open each one
with the persona's prefix. Rather than drop them, the repair removes each flagged opening or
closing phrase from every answer after the first ``keep`` answers (where a set phrase is
expected), reruns the checks and reports what it changed per dialogue. Only edge phrases are
removed; a phrase in the middle of answers is left for the filter to judge.
"""
from __future__ import annotations

from typing import Any, Sequence

from .checks import CheckThresholds, run_checks, split_turns
from .config import PersonaDef
from .edges import strip_edge
from .personas import BUILTIN_PERSONAS

MAX_ROUNDS = 3  # a second set phrase can show once the first is gone


def known_personas(configured: list[PersonaDef] | None = None) -> dict[str, PersonaDef]:
    """Built-in personas by name, overridden by the config's own."""
    out = {name: PersonaDef.model_validate(p) for name, p in BUILTIN_PERSONAS.items()}
    out.update({p.name: p for p in configured or ()})
    return out


def edge_phrases(checks: dict) -> list[dict]:
    """The flagged catchphrases that sit at an edge of the answers ({phrase, position})."""
    r = checks.get("catchphrase") or {}
    if r.get("passed", True) or not isinstance(r.get("value"), list):
        return []
    return [v for v in r["value"] if isinstance(v, dict) and v.get("position") in ("opening", "closing")]


def repair_dialogue(messages: list[dict], checks: dict, t: CheckThresholds, *, persona: PersonaDef | None = None,
                    keep: int = 1, expected_turns: int | None = None) -> tuple[list[dict], list[dict], dict] | None:
    """(repaired messages, changes, new checks), or None when there is nothing to repair."""
    msgs = [dict(m) for m in messages]
    changes: list[dict] = []
    for _ in range(MAX_ROUNDS):
        phrases = edge_phrases(checks)
        if not phrases:
            break
        changed = False
        for ph in phrases:
            turn = 0
            for m in msgs:
                if m.get("role") != "assistant":
                    continue
                turn += 1
                if turn <= keep:
                    continue
                new = strip_edge(str(m.get("content") or ""), ph["phrase"], ph["position"])
                if new is not None and new != m["content"]:
                    changes.append({"turn": turn, "position": ph["position"], "removed": ph["phrase"]})
                    m["content"] = new
                    changed = True
        if not changed:
            break
        checks = run_checks(msgs, t, expected_turns=expected_turns, persona=persona)
    if not changes:
        return None
    return msgs, changes, checks


def answers_of(messages: list[dict]) -> list[str]:
    return split_turns(messages)[1]


def repaired_record(record: dict[str, Any], messages: list[dict], changes: list[dict], checks: dict,
                    advisory: Sequence[str] = ()) -> dict[str, Any]:
    """The record again, with the repaired messages, the new check results and what changed."""
    from .checks import decide
    from .records import answer_stats
    old = {k: v for k, v in (record.get("checks") or {}).items() if k not in checks}  # e.g. the judge's
    merged = {**checks, **old}
    passed, reasons = decide(merged, advisory)
    convo = [{"role": m["role"], "content": m["content"]} for m in messages if m.get("role") != "system"]
    return {**record, "messages": convo, "answer_stats": answer_stats(convo), "checks": merged, "passed": passed,
            "filter_reasons": reasons, "repair": {"changes": changes, "failed_before": record.get("filter_reasons")}}
