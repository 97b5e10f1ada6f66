"""Jinja templates of the agent loop: our defaults in templates/*.j2, overridable per config.

An override in `agent.templates.<name>` is either a path to a file (relative to the config)
or the template text itself.
"""
from __future__ import annotations

from pathlib import Path

import jinja2

from ...engine.errors import ConfigError
from .config import AgentConfig

TEMPLATE_DIR = Path(__file__).parent / "templates"
NAMES = ("system", "instance", "observation", "format_error", "observation_summary", "history_summary", "summary_message")

_env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False,
                          trim_blocks=True, lstrip_blocks=True)


class Prompts:
    def __init__(self, cfg: AgentConfig):
        self.globals = {"action_mode": cfg.action_mode, "submit_signal": cfg.submit_signal,
                        "step_limit": cfg.limits.step_limit}
        self.templates: dict[str, jinja2.Template] = {}
        for name in NAMES:
            override = getattr(cfg.templates, name, None)
            source = f"{name}.j2"
            if override:
                p = Path(override) if Path(override).is_absolute() else Path(cfg.base_dir) / override
                if "\n" not in override and p.suffix in (".j2", ".jinja", ".txt", ".md") and p.is_file():
                    text, source = p.read_text(encoding="utf-8"), str(p)
                else:
                    text, source = override, f"agent.templates.{name}"
            else:
                text = (TEMPLATE_DIR / f"{name}.j2").read_text(encoding="utf-8")
            try:
                self.templates[name] = _env.from_string(text)
            except jinja2.TemplateSyntaxError as e:
                raise ConfigError(f"{source}:{e.lineno}: template syntax error: {e.message}") from None

    def render(self, name: str, **values) -> str:
        try:
            return self.templates[name].render(**self.globals, **values).strip()
        except jinja2.UndefinedError as e:
            raise ConfigError(f"template {name!r}: {e.message}") from None
