"""The judge: one structured-output call per dialogue, scored 1-5 with feedback."""
from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, Field

from dialogforge.engine.errors import StructuredOutputError

from .checks import split_turns
from .config import AgentConfig
from .prompts import Prompts

log = logging.getLogger(__name__)


class JudgeScores(BaseModel):
    """What the judge must answer (validated; invalid answers are repaired by retry)."""

    correctness: float = Field(ge=1, le=5, description="1 = mostly wrong, 5 = fully correct")
    relevance: float = Field(ge=1, le=5, description="1 = off-topic or repetitive, 5 = every answer on point")
    feedback: str = Field(max_length=400, description="one or two sentences")


def judge_messages(prompts: Prompts, messages: list[dict], *, persona: str | None, reference: str | None) -> list[dict]:
    qs, ans = split_turns(messages)
    turns = [{"question": q, "answer": a} for q, a in zip(qs, ans)]
    text = prompts.render("judge.j2", persona=persona, reference=reference, turns=turns)
    return [{"role": "user", "content": text}]


async def judge_dialogue(ctx: Any, prompts: Prompts, agent: AgentConfig, messages: list[dict], *,
                         persona: str | None = None, reference: str | None = None) -> tuple[dict | None, str | None]:
    """(judge record, error). The record: score (mean of the two, 2 decimals), correctness, relevance, feedback, model."""
    msgs = judge_messages(prompts, messages, persona=persona, reference=reference)
    try:
        r = await ctx.chat(msgs, role=agent.role, purpose="judge", schema=JudgeScores, **agent.request_params())
    except StructuredOutputError as e:
        return None, f"judge answer never validated: {e}"
    s: JudgeScores = r.parsed
    return {
        "score": round((s.correctness + s.relevance) / 2, 2),
        "correctness": round(s.correctness, 2),
        "relevance": round(s.relevance, 2),
        "feedback": s.feedback.strip(),
        "model": r.model,
    }, None


def judge_check(judge: dict | None, error: str | None, min_score: float | None) -> dict:
    """The judge as a check result, next to the heuristics."""
    if judge is None:
        return {"passed": False, "reason": error or "not judged", "value": None}
    score = judge["score"]
    if min_score is not None and score < min_score:
        return {"passed": False, "reason": f"score {score:g} < min {min_score:g}: {judge['feedback']}", "value": score}
    floor = f" (min {min_score:g})" if min_score is not None else ""
    return {"passed": True, "reason": f"score {score:g}{floor}", "value": score}


def endpoint_identity(engine: Any, role: str) -> tuple[str, str | None, str | None] | None:
    """(endpoint name, base_url, model) a role resolves to, or None when it cannot be told."""
    cfg = getattr(engine, "config", None)
    if cfg is None:
        return None
    try:
        name = cfg.endpoint_for(role)
    except Exception:
        return ("embedded", None, None) if not getattr(cfg, "endpoints", None) else None
    ep = cfg.endpoints.get(name)
    if ep is None:
        return (name, None, None)
    return (name, ep.base_url, ep.model)


def warn_if_same(engine: Any, generator_role: str, judge_role: str, console: Any = None) -> bool:
    """Warn when the judge would be the generator judging itself; returns whether it is."""
    g, j = endpoint_identity(engine, generator_role), endpoint_identity(engine, judge_role)
    if g is None or j is None:
        return False
    same = g == j or (g[1:] == j[1:] and g[2] is not None)
    if same:
        msg = (f"the judge (role {judge_role!r}) uses the same endpoint and model as the generator "
               f"(role {generator_role!r}: {g[2] or g[0]}); scores will be biased - map roles.{judge_role} "
               f"to a different endpoint")
        if console is not None:
            console.print(f"[yellow]warning:[/] {msg}", highlight=False)
        else:
            log.warning(msg)
    return same
