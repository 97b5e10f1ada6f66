"""The workflow's Jinja prompt templates, overridable per run.

A run's ``prompts_dir`` may hold any of the template files below; a file found
there replaces the built-in one of the same name, the others stay built-in.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from dialogforge.engine.errors import ConfigError

BUILTIN_DIR = Path(__file__).parent
TEMPLATES = (
    "persona_system.j2",    # the persona's system prompt (stored in each record as "system")
    "rewrite_question.j2",  # seed question -> natural opening question
    "first_answer.j2",      # system note for the first answer (the seed answer's facts, prefix, suffix)
    "persona_turn.j2",      # system note for each follow-up answer (keep detail, suffix)
    "user_turn.j2",         # the user simulator's request
    "judge.j2",             # the judge's request
)


class Prompts:
    def __init__(self, override_dir: str | Path | None = None):
        loaders: list[jinja2.BaseLoader] = []
        if override_dir is not None:
            d = Path(override_dir)
            if not d.is_dir():
                raise ConfigError(f"persona.prompts_dir: {d} is not a directory")
            unknown = sorted(p.name for p in d.glob("*.j2") if p.name not in TEMPLATES)
            if unknown:
                raise ConfigError(f"persona.prompts_dir: unknown template(s) {', '.join(unknown)} in {d} "
                                  f"(known: {', '.join(TEMPLATES)})")
            loaders.append(jinja2.FileSystemLoader(str(d)))
        loaders.append(jinja2.FileSystemLoader(str(BUILTIN_DIR)))
        self.env = jinja2.Environment(loader=jinja2.ChoiceLoader(loaders), undefined=jinja2.StrictUndefined,
                                      keep_trailing_newline=False, autoescape=False)
        self._cache: dict[str, jinja2.Template] = {}

    def render(self, name: str, **ctx: Any) -> str:
        tpl = self._cache.get(name)
        if tpl is None:
            try:
                tpl = self.env.get_template(name)
            except jinja2.TemplateSyntaxError as e:
                raise ConfigError(f"prompt template {e.filename or name}:{e.lineno}: {e.message}") from None
            self._cache[name] = tpl
        try:
            text = tpl.render(**ctx)
        except jinja2.UndefinedError as e:
            raise ConfigError(f"prompt template {name}: {e.message}") from None
        # tidy: no runs of blank lines left by template conditionals
        lines = text.strip().split("\n")
        out: list[str] = []
        for ln in lines:
            if not ln.strip() and out and not out[-1].strip():
                continue
            out.append(ln.rstrip())
        return "\n".join(out)
