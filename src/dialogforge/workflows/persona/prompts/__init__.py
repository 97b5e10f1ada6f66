"""The persona workflow's Jinja templates (the files in this folder), loaded through the kit's ``Prompts``.

Override any of them in the config: ``persona.templates.<name>`` (a file relative to the config, or
the text), or ``persona.prompts_dir``, a folder whose ``<name>.j2`` files replace the built-in ones
(a shorthand for listing each file under ``templates``).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from ...kit import Prompts, templates_in_dir

if TYPE_CHECKING:
    from ..config import PersonaConfig

BUILTIN_DIR = Path(__file__).parent
NAMES = (
    "persona_system",    # the persona's system prompt (stored in each record as "system")
    "rewrite_question",  # seed question -> natural opening question
    "first_answer",      # system note for the first answer (the seed answer's facts, prefix, suffix)
    "persona_turn",      # system note for each follow-up answer (keep detail, suffix)
    "user_turn",         # the user simulator's request
    "judge",             # the judge's request
)
TEMPLATES = tuple(n + ".j2" for n in NAMES)
__all__ = ["Prompts", "persona_prompts", "NAMES", "TEMPLATES"]


def persona_prompts(cfg: "PersonaConfig | None" = None, *, prompts_dir: str | Path | None = None,
                    templates: Mapping[str, str] | None = None, base_dir: str | Path = ".") -> Prompts:
    """The persona templates of a config (or of a prompts folder and template overrides)."""
    if cfg is not None:
        prompts_dir = cfg.resolve(cfg.prompts_dir)
        templates, base_dir = cfg.templates, cfg.base_dir
    overrides: dict[str, str] = {}
    if prompts_dir is not None:
        overrides.update(templates_in_dir(prompts_dir, NAMES, "persona.prompts_dir"))
    overrides.update(templates or {})
    return Prompts(BUILTIN_DIR, NAMES, overrides=overrides, base_dir=base_dir, section="persona.templates", tidy=True)
