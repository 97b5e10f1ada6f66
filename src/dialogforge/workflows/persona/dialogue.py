"""One dialogue from one seed: opening question, persona answers, simulated follow-ups, judge, checks.

Every message goes through clean-up; a message that is empty afterwards is asked
again with a new ``sample`` (a fresh answer, not the cached one), and after
``max_attempts`` the item fails: an API failure or an empty answer never becomes
an empty turn.  A follow-up question too similar to an earlier one (or not matching
``follow_up_pattern``) is asked again the same way; if it stays so it is kept and the
checks report it.  With ``reask``, an answer that would make the dialogue fail one of
the named checks is asked again too.
"""
from __future__ import annotations

import functools
import hashlib
import random
import re
from typing import Any, Callable

from dialogforge.engine.errors import ItemFailed
from dialogforge.engine.runner import Records

from .checks import parrots, repeats_a_question, run_checks
from .cleanup import clean_answer, clean_question
from .config import PersonaConfig, PersonaDef
from .judge import judge_check, judge_dialogue
from .prompts import Prompts
from .records import build_record
from .text import squash


def _rng(dialogue_id: str) -> random.Random:
    return random.Random(hashlib.blake2b(dialogue_id.encode(), digest_size=8).hexdigest())


def force_prefix(answer: str, prefix: str | None) -> str:
    if not prefix or squash(answer).startswith(squash(prefix)):
        return answer
    return f"{prefix} {answer}"


def force_suffix(answer: str, suffix: str | None) -> str:
    if not suffix or squash(answer).endswith(squash(suffix)):
        return answer
    return f"{answer} {suffix}"


class DialogueMaker:
    """Holds what every item of a run shares; ``process`` is the engine's per-item function."""

    def __init__(self, cfg: PersonaConfig, prompts: Prompts):
        self.cfg = cfg
        self.prompts = prompts

    async def _ask(self, ctx: Any, agent: str, messages: list[dict], purpose: str,
                   clean: Callable[[str | None], tuple[str, list[str]]],
                   accept: Callable[[str], bool] | None = None) -> tuple[str, list[str]]:
        a = getattr(self.cfg.agents, agent)
        last: tuple[str, list[str]] | None = None
        tries = self.cfg.max_attempts
        for sample in range(tries):
            r = await ctx.chat(messages, role=a.role, purpose=purpose, sample=sample, **a.request_params())
            text, fixes = clean(r.text)
            if not text:
                continue
            last = (text, fixes)
            if accept is None or accept(text):
                return last
        if last is not None:
            return last
        raise ItemFailed(f"{purpose} ({agent}): empty after clean-up in {tries} attempt(s)")

    def _keeps_checks(self, history: list[dict], q: str, persona: PersonaDef,
                      finish: Callable[[str], str]) -> Callable[[str], bool] | None:
        """With ``reask``: accept an answer unless it makes the dialogue so far fail one of those checks
        (a check that already failed before this answer cannot be mended by asking it again)."""
        names = self.cfg.reask
        if not names:
            return None
        t = self.cfg.quality.checks
        before = run_checks(history, t, persona=persona) if history else {}

        def accept(text: str) -> bool:
            msgs = [*history, {"role": "user", "content": q}, {"role": "assistant", "content": finish(text)}]
            after = run_checks(msgs, t, persona=persona)
            return all(after[n]["passed"] or not before.get(n, {"passed": True})["passed"] for n in names if n in after)
        return accept

    async def process(self, item: dict, ctx: Any) -> Records:
        cfg = self.cfg
        persona: PersonaDef = cfg.persona(item["persona"])
        did: str = ctx.item_id
        n: int = item["turns"]
        rng = _rng(did)
        prefix = rng.choice(persona.answer_prefixes) if cfg.use_answer_prefix and persona.answer_prefixes else None
        suffixes = persona.answer_suffixes if cfg.use_answer_suffix else []
        system = self.prompts.render("persona_system.j2", persona=persona)
        names = [persona.role_name, persona.name]
        cleanup_log: list[dict] = []

        if cfg.rewrite_question:
            req = self.prompts.render("rewrite_question.j2", instruction=item["instruction"], language=persona.language)
            q, fixes = await self._ask(ctx, "rewrite", [{"role": "user", "content": req}], "rewrite", clean_question)
            if fixes:
                cleanup_log.append({"turn": 1, "role": "user", "fixes": fixes})
        else:
            q = item["instruction"]

        history: list[dict] = []
        questions: list[str] = []
        echo_t = cfg.quality.checks.echo
        pattern = re.compile(cfg.follow_up_pattern) if cfg.follow_up_pattern else None
        for turn in range(1, n + 1):
            if turn > 1:
                req = self.prompts.render("user_turn.j2", persona=persona, language=persona.language,
                                          questions=questions, history=history)
                asked, last_answer = list(questions), history[-1]["content"]
                q, fixes = await self._ask(
                    ctx, "user", [{"role": "user", "content": req}], "user", clean_question,
                    accept=lambda t: not repeats_a_question(t, asked, echo_t) and not parrots(t, last_answer, echo_t)
                    and (pattern is None or pattern.search(t) is not None))
                if fixes:
                    cleanup_log.append({"turn": turn, "role": "user", "fixes": fixes})
            questions.append(q)
            suffix = rng.choice(suffixes) if suffixes and persona.suffix_at(turn, n) else None
            if turn == 1:
                note = self.prompts.render("first_answer.j2", persona=persona, question=q, reference=item["output"],
                                           prefix=prefix, suffix=suffix)
            else:
                note = self.prompts.render("persona_turn.j2", persona=persona, question=q, suffix=suffix, turn=turn)
            # the stored conversation stays clean: per-turn guidance goes into the request's system message
            msgs = [{"role": "system", "content": f"{system}\n\n{note}" if note else system}, *history,
                    {"role": "user", "content": q}]
            def finish(text: str, turn: int = turn, suffix: str | None = suffix) -> str:
                return force_suffix(force_prefix(text, prefix) if turn == 1 else text, suffix)

            answer, fixes = await self._ask(ctx, "persona", msgs, "main", functools.partial(
                clean_answer, question=q, names=names), accept=self._keeps_checks(history, q, persona, finish))
            if fixes:
                cleanup_log.append({"turn": turn, "role": "assistant", "fixes": fixes})
            answer = finish(answer)
            history += [{"role": "user", "content": q}, {"role": "assistant", "content": answer}]

        checks = run_checks(history, cfg.quality.checks, expected_turns=n, persona=persona)
        if pattern is not None:  # a follow-up that stayed off the pattern after every attempt keeps the dialogue out
            off = [i + 1 for i, asked_q in enumerate(questions) if i and pattern.search(asked_q) is None]
            checks["follow_up"] = {"passed": not off, "value": off, "reason": (
                f"follow-up at turn {', '.join(map(str, off))} does not match follow_up_pattern" if off
                else "every follow-up matches follow_up_pattern")}
        judge = None
        if cfg.quality.judge:
            judge, err = await judge_dialogue(ctx, self.prompts, cfg.agents.judge, history,
                                              persona=f"{persona.role_name}: {persona.description}",
                                              reference=item["output"])
            checks["judge"] = judge_check(judge, err, cfg.quality.min_score)
        rec = build_record(dialogue_id=did, messages=history, system=system, persona=persona.name,
                           seed=item.get("provenance"), judge=judge, checks=checks,
                           extra={"language": persona.language, "cleanup": cleanup_log},
                           advisory=cfg.quality.advisory)
        return Records(raw=[rec], filtered=[rec] if rec["passed"] else [])
