"""The agent loop's Jinja templates: our defaults in templates/*.j2, loaded through the kit's ``Prompts``.

An override in `agent.templates.<name>` is either a path to a file (relative to the config)
or the template text itself.
"""
from __future__ import annotations

from pathlib import Path

from ..kit import Prompts
from .config import AgentConfig

TEMPLATE_DIR = Path(__file__).parent / "templates"
NAMES = ("system", "instance", "observation", "format_error", "observation_summary", "history_summary", "summary_message")

__all__ = ["Prompts", "agent_prompts", "NAMES"]


def agent_prompts(cfg: AgentConfig) -> Prompts:
    """The agent templates of a config; every template sees action_mode, submit_signal and step_limit."""
    return Prompts(TEMPLATE_DIR, NAMES, overrides=cfg.templates.model_dump(), base_dir=cfg.base_dir,
                   section="agent.templates", trim=True,
                   globals={"action_mode": cfg.action_mode, "submit_signal": cfg.submit_signal,
                            "step_limit": cfg.limits.step_limit})
