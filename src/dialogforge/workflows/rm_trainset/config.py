"""The ``rm_trainset:`` section of a dialogforge config (every key optional).

```yaml
rm_trainset:
  rationale: {role: generator, temperature: 0.7, max_tokens: 300}   # writes a rationale for the human label
  reader: {role: judge, temperature: 0.7, max_tokens: 80}           # reads the rationale alone, guesses the label
  readings: 3          # independent readings of each rationale
  agree: null          # readings that must agree with the label (default: all of them)
  attempts: 3          # rationales tried per item before it is dropped
  balance: true        # upsample the smaller categories to the largest
  seed: 0              # of the upsampling
  concurrency: 8
  templates: {rationale: my_rationale.j2}   # question, rationale, counter, reading: a file or the text
```
"""
from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from ..kit import Strict, load_section


class Call(Strict):
    role: str
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)

    def request(self) -> dict[str, Any]:
        p: dict[str, Any] = {}
        if self.temperature is not None:
            p["temperature"] = self.temperature
        if self.max_tokens is not None:
            p["max_tokens"] = self.max_tokens
        return p


class RmTrainsetConfig(Strict):
    rationale: Call = Call(role="generator", temperature=0.7, max_tokens=300)
    reader: Call = Call(role="judge", temperature=0.7, max_tokens=80)
    readings: int = Field(3, ge=1, le=15)
    agree: int | None = Field(None, ge=1)
    attempts: int = Field(3, ge=1, le=10)
    balance: bool = True
    seed: int = 0
    concurrency: int = Field(8, ge=1)
    templates: dict[str, str] = Field(default_factory=dict)
    base_dir: str = "."

    @model_validator(mode="after")
    def _agree_fits(self) -> "RmTrainsetConfig":
        if self.agree is not None and self.agree > self.readings:
            raise ValueError(f"agree ({self.agree}) cannot exceed readings ({self.readings})")
        return self

    @property
    def needed(self) -> int:
        return self.agree if self.agree is not None else self.readings

    def roles(self) -> list[str]:
        return sorted({self.rationale.role, self.reader.role})


def rm_trainset_config(engine_config: Any) -> RmTrainsetConfig:
    return load_section(engine_config, "rm_trainset", RmTrainsetConfig)
