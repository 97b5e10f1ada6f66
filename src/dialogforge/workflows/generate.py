"""Single-turn generation: one prompt (or message list) in, one or more responses out.

    dialogforge generate prompts.jsonl -o answers.jsonl --n 2 --system "Be brief."

Each output row keeps the input's id (or line number) and adds the response text, the
finish reason, token usage and the sample index.
"""
from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field, field_validator

from ..engine import (Engine, InputError, ItemContext, ItemFailed, Records, RunResult, Shippable, count_items,
                      read_items)
from ..core.rows import refuse_overwrite
from ..engine.identity import file_digest
from ..engine.runner import seen_before
from .kit import RequestParams, Strict, known_keys, load_section, override


class GenerateSection(Strict):
    """The optional `generate:` section of a config file."""

    system: str | None = None
    n: int = Field(1, ge=1)
    params: RequestParams = {}
    fields: dict[str, str] = {}  # our name -> the file's name: prompt, messages, id

    @field_validator("fields")
    @classmethod
    def _our_names(cls, v: dict[str, str]) -> dict[str, str]:
        return known_keys(v, ("prompt", "messages", "id"))


def options_from_config(engine: Engine, *, system: str | None = None, n: int | None = None,
                        params: dict[str, Any] | None = None, fields: dict[str, str] | None = None,
                        keep_input: bool = False) -> "GenerateOptions":
    """The `generate:` section with the command line's values over it (params and fields add keys)."""
    sec = load_section(engine.config, "generate", GenerateSection)
    sec = override(sec, {"system": system, "n": n, **{f"params.{k}": v for k, v in (params or {}).items()},
                         **{f"fields.{k}": v for k, v in (fields or {}).items()}}, prefix=("generate",))
    return GenerateOptions(system=sec.system, n=sec.n, params=dict(sec.params), fields=dict(sec.fields),
                           keep_input=keep_input)


@dataclass
class GenerateOptions:
    system: str | None = None
    n: int = 1
    params: dict[str, Any] = field(default_factory=dict)  # temperature, max_tokens, ...
    fields: dict[str, str] = field(default_factory=dict)  # our name -> the file's name (prompt, messages, id)
    keep_input: bool = False


def build_messages(item: dict, system: str | None) -> list[dict]:
    if isinstance(item.get("messages"), list):
        msgs = list(item["messages"])
    elif isinstance(item.get("prompt"), str):
        msgs = [{"role": "user", "content": item["prompt"]}]
    else:
        raise ItemFailed("the row has neither a 'prompt' string nor a 'messages' list (map fields with --field)")
    if system and not (msgs and msgs[0].get("role") == "system"):
        msgs = [{"role": "system", "content": system}, *msgs]
    return msgs


def make_process(opts: GenerateOptions):
    async def process(item: dict, ctx: ItemContext) -> Records:
        messages = build_messages(item, opts.system)
        # the samples are independent: asked together (one batch round in batch mode); one sample is
        # awaited directly (gather would wrap it in a task of its own, per item)
        if opts.n == 1:
            answers = [await ctx.chat(messages, role="generator", purpose="main", sample=0, **opts.params)]
        else:
            answers = await asyncio.gather(*(ctx.chat(messages, role="generator", purpose="main", sample=k,
                                                      **opts.params) for k in range(opts.n)))
        rows = []
        for k, r in enumerate(answers):
            row = {"id": ctx.item_id, "sample": k, "response": r.text, "finish_reason": r.finish_reason,
                   "usage": {"prompt_tokens": r.usage.prompt_tokens, "completion_tokens": r.usage.completion_tokens},
                   "model": r.model}
            if opts.keep_input:
                row["input"] = item
            rows.append(row)
        return Records(output=rows)
    return process


async def generate(engine: Engine, input_path: str | os.PathLike, output: str | os.PathLike,
                   opts: GenerateOptions | None = None, *, concurrency: int = 64, retry_failed: bool = False,
                   progress: bool = True, continue_: bool = False) -> RunResult:
    """Run single-turn generation over a JSONL/JSON file of prompts.

    Rerunning into the same output with another model, parameters, system prompt or input file
    is refused unless ``continue_`` (``--continue``)."""
    opts = opts or GenerateOptions()
    refuse_overwrite([input_path], {"-o": output})
    id_field = opts.fields.get("id")
    fields = {k: v for k, v in opts.fields.items() if k != "id"}
    identity = {"generate": {"system": opts.system, "n": opts.n, "params": opts.params, "fields": opts.fields,
                             "keep_input": opts.keep_input}, "input": file_digest(input_path)}
    # a rerun of the same command: these very bytes passed the checks when the run first started (its identity
    # holds their hash), so only their rows are counted; the run itself still reads and checks every row
    total = count_items(input_path) if seen_before(engine, name="generate", output=output, identity=identity,
                                                   roles=["generator"]) else None
    if total is None:
        total = _check_input(input_path, id_field, fields)
    items = read_items(input_path, id_field=id_field, fields=fields)
    return await engine.run(name="generate", items=items, process=Shippable(make_process, (opts,)), output=output,
                            concurrency=concurrency, retry_failed=retry_failed, total=total,
                            progress=progress, roles=["generator"], continue_=continue_, identity=identity)


def _check_input(input_path: str | os.PathLike, id_field: str | None, fields: dict[str, str]) -> int:
    """One pass before the run: a malformed line, a repeated id or a file with no prompt at all (a typo in
    --field) is reported before any request is sent. The number of rows."""
    total = usable = 0
    first: dict = {}
    for _, row in read_items(input_path, id_field=id_field, fields=fields):
        first = first or row
        total += 1
        usable += isinstance(row.get("messages"), list) or isinstance(row.get("prompt"), str)
    if total and not usable:
        mapped = ", ".join(f"{k}={v}" for k, v in fields.items())
        raise InputError(f"{input_path}: no row has a 'prompt' string or a 'messages' list"
                         + (f" after the field mapping {mapped}" if mapped else "")
                         + f" (the first row has: {', '.join(sorted(first)) or 'no fields'}; map one with "
                         "--field prompt=NAME)")
    return total
