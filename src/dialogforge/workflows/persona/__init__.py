"""Persona dialogues: multi-turn conversations from single-turn seeds, with quality control.

```python
from dialogforge.workflows import persona
res = persona.run("examples/persona/demo.yaml", limit=5)          # -> PersonaRunResult (paths + summary)
summary = persona.check("dialogues.jsonl", "checked.jsonl")      # heuristics only
summary = persona.check("dialogues.jsonl", "checked.jsonl", judge=True, config="config.yaml")
```
"""
from __future__ import annotations

from .checks import CheckThresholds, run_checks
from .config import PersonaConfig, PersonaDef, parse_persona_config
from .import_config import import_config
from .personas import BUILTIN_PERSONAS
from .qc import acheck, check
from .workflow import PersonaRunResult, arun, load, run, run_demo

__all__ = [
    "run", "arun", "load", "run_demo", "check", "acheck", "run_checks", "import_config", "PersonaConfig", "PersonaDef",
    "PersonaRunResult", "CheckThresholds", "BUILTIN_PERSONAS", "parse_persona_config",
]
