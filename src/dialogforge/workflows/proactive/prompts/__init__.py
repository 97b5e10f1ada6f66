"""The proactive workflow's Jinja templates (ours). Any of them can be replaced per run through
``proactive.templates: {name: file-or-text}`` (the workflow kit's one override mechanism)."""
from __future__ import annotations

from pathlib import Path

from ...kit import Prompts

BUILTIN_DIR = Path(__file__).parent
NAMES = tuple(sorted(p.stem for p in BUILTIN_DIR.glob("*.j2")))


def proactive_prompts(cfg) -> Prompts:
    return Prompts(BUILTIN_DIR, NAMES, overrides=cfg.templates, base_dir=cfg.base_dir, section="proactive.templates",
                   trim=True)
