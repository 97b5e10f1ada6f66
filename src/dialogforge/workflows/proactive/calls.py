"""The calls every proactive step makes, in one place: the agent's answer (sent exactly as recorded, so a
training sample is byte-for-byte what the model saw) and the reward model's ruling."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from dialogforge.engine import ItemContext
from dialogforge.engine.structured import response_format, validate

from .config import Call, ProactiveConfig


@dataclass
class AgentReply:
    messages: list[dict[str, Any]]  # exactly as sent
    text: str
    answer: Any | None  # the AgentAnswer; None: the reply was not a valid answer
    error: str | None = None


def format_params(ctx: ItemContext, call: Call, schema: type[BaseModel]) -> dict[str, Any]:
    """Request params with the JSON format the endpoint supports; the prompt itself describes the fields."""
    p = call.request()
    fmt = response_format(schema, ctx.engine.endpoint_config(call.role).structured_output)
    if fmt is not None:
        p["response_format"] = fmt
    return p


async def ask_agent(ctx: ItemContext, cfg: ProactiveConfig, messages: list[dict[str, Any]], *, sample: int = 0,
                    purpose: str = "agent") -> AgentReply:
    """One agent answer. An unparseable reply is returned with its error, not repaired: the messages
    of a training sample must be the ones the model answered."""
    call, schema = cfg.calls.agent, cfg.schemas().AgentAnswer
    resp = await ctx.chat(messages, role=call.role, purpose=purpose, sample=sample,
                          **format_params(ctx, call, schema))
    text = resp.text or ""
    try:
        answer = validate(schema, text)
    except (ValidationError, ValueError) as e:
        return AgentReply(messages, text, None, f"unparseable agent answer: {' '.join(str(e).split())[:300]}")
    return AgentReply(messages, text, answer)


async def judge(ctx: ItemContext, cfg: ProactiveConfig, messages: list[dict[str, Any]], *,
                purpose: str = "reward") -> Any:
    """The reward-model role's Judgement (validated and repaired by the engine, or StructuredOutputError)."""
    call = cfg.calls.reward
    resp = await ctx.chat(messages, role=call.role, purpose=purpose, schema=cfg.schemas().Judgement, **call.request())
    return resp.parsed
