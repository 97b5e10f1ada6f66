"""The proactive workflow's Jinja templates (ours), overridable per run through ``proactive.prompts_dir``:
a ``*.j2`` file there replaces the built-in template of the same name."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from dialogforge.engine.errors import ConfigError

BUILTIN_DIR = Path(__file__).parent
TEMPLATES = tuple(sorted(p.name for p in BUILTIN_DIR.glob("*.j2")))


class Prompts:
    def __init__(self, override_dir: str | Path | None = None):
        loaders: list[jinja2.BaseLoader] = []
        if override_dir is not None:
            d = Path(override_dir)
            if not d.is_dir():
                raise ConfigError(f"proactive.prompts_dir: {d} is not a directory")
            unknown = sorted(p.name for p in d.glob("*.j2") if p.name not in TEMPLATES)
            if unknown:
                raise ConfigError(f"proactive.prompts_dir: unknown template(s) {', '.join(unknown)} in {d} "
                                  f"(known: {', '.join(TEMPLATES)})")
            loaders.append(jinja2.FileSystemLoader(str(d)))
        loaders.append(jinja2.FileSystemLoader(str(BUILTIN_DIR)))
        self.env = jinja2.Environment(loader=jinja2.ChoiceLoader(loaders), undefined=jinja2.StrictUndefined,
                                      autoescape=False, trim_blocks=True, lstrip_blocks=True)

    def render(self, name: str, **ctx: Any) -> str:
        try:
            tpl = self.env.get_template(name)
        except jinja2.TemplateSyntaxError as e:
            raise ConfigError(f"prompt template {e.filename or name}:{e.lineno}: {e.message}") from None
        try:
            return tpl.render(**ctx).strip()
        except jinja2.UndefinedError as e:
            raise ConfigError(f"prompt template {name}: {e.message}") from None
