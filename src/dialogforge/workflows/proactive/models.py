"""What each role answers (structured output, validated by the engine, repaired or failed).

Every string and list is capped (``proactive.limits``): the caps are part of the JSON schema the
model is sent, so a constrained decoder (the embedded model) cannot run away, and any other model's
answer is held to the same bounds.
"""

from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Optional

from pydantic import BaseModel, Field, StringConstraints, field_validator

from .data import NULL_TASKS


@dataclass(frozen=True)
class Schemas:
    SceneEnvironment: type[BaseModel]
    SceneUser: type[BaseModel]
    EnvState: type[BaseModel]
    Activity: type[BaseModel]
    EventBatch: type[BaseModel]
    AgentAnswer: type[BaseModel]
    Judgement: type[BaseModel]
    Operation: type[BaseModel]
    OperationResult: type[BaseModel]


@lru_cache(maxsize=8)
def schemas(chars: int = 300, items: int = 8, n_events: int = 3) -> Schemas:  # noqa: C901 - one class per role answer
    """The answer models for text fields of at most ``chars`` characters and lists of at most ``items``."""
    Text = Annotated[str, StringConstraints(min_length=1, max_length=chars)]
    Short = Annotated[str, StringConstraints(min_length=1, max_length=min(chars, 80))]
    Free = Annotated[str, StringConstraints(max_length=chars)]

    class Environment(BaseModel):
        theme: Short
        description: Text
        entities: list[Short] = Field(min_length=1, max_length=items)
        agent_ops: list[Short] = Field(min_length=1, max_length=items)
        events_example: list[Text] = Field(min_length=1, max_length=items)

    class SceneUser(BaseModel):
        goal: Text
        description: Text

    class EntityState(BaseModel):
        name: Short
        status: Free = ""
        properties: dict[str, Free] = Field(default_factory=dict, max_length=items)
        operations: list[Short] = Field(default_factory=list, max_length=items)

    class AgentOp(BaseModel):
        name: Short
        arguments: list[Short] = Field(default_factory=list, max_length=items)

    class EnvState(BaseModel):
        start_time: float = Field(gt=0, lt=4e9)
        entities: list[EntityState] = Field(min_length=1, max_length=items)
        agent_ops: list[AgentOp] = Field(min_length=1, max_length=items)

    class Activity(BaseModel):
        activity: Text
        done: bool = False

    class EntityUpdate(BaseModel):
        name: Short
        status: Free

    class Event(BaseModel):
        event: Text
        seconds: float = Field(ge=0, le=3600)
        updates: list[EntityUpdate] = Field(default_factory=list, max_length=items)

    class EventBatch(BaseModel):
        events: list[Event] = Field(min_length=1, max_length=n_events)

    class AgentAnswer(BaseModel):
        purpose: Free = ""
        thoughts: Free = ""
        proposed_task: Optional[Free] = None
        response: Free = ""

        @field_validator("proposed_task")
        @classmethod
        def _null(cls, v: str | None) -> str | None:
            return None if v is None or v.strip().lower() in NULL_TASKS else v.strip()

    class Judgement(BaseModel):
        accept: bool
        reason: Free = ""

    class Operation(BaseModel):
        finished: bool = False
        operation: Annotated[str, StringConstraints(max_length=80)] = ""
        arguments: dict[str, Free] = Field(default_factory=dict, max_length=items)

    class OperationResult(BaseModel):
        event: Text
        updates: list[EntityUpdate] = Field(default_factory=list, max_length=items)

    return Schemas(Environment, SceneUser, EnvState, Activity, EventBatch, AgentAnswer, Judgement, Operation,
                   OperationResult)
