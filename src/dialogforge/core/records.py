"""The records our workflows write and the formats read: one schema both sides import.

The files stay plain JSONL; these TypedDicts say what a row holds. Writers annotate the rows they
build with them (mypy then refuses an unknown or misspelt key), and readers of metadata go through
`meta(record, key)`, whose key must be one of `MetaKey` (a misspelt key fails type checking; a test
keeps `MetaKey` inside the records' declared fields).
"""

from typing import Any, Literal, Mapping, NotRequired, Required, TypedDict


class ToolCallFunction(TypedDict):
    name: str
    arguments: str | dict[str, Any]  # JSON text in workflow records; objects in TRL exports


class ToolCallRecord(TypedDict, total=False):
    id: str
    type: str
    function: Required[ToolCallFunction]


class ChatMessage(TypedDict, total=False):
    role: Required[str]  # system | user | assistant | tool
    content: str | None
    tool_calls: list[ToolCallRecord]
    tool_call_id: str
    name: str


class PersonaDialogue(TypedDict):
    """`persona run` / `persona check`: one dialogue with its checks (see workflows/persona/records.py)."""

    id: str
    messages: list[ChatMessage]
    system: str | None
    persona: str | None
    seed: dict[str, Any] | None
    turns: int
    answer_stats: list[dict[str, Any]]
    judge: dict[str, Any] | None
    checks: dict[str, Any]
    passed: bool
    filter_reasons: list[str]
    created_at: str
    language: NotRequired[str | None]  # persona run: the persona's answer language
    cleanup: NotRequired[list[dict[str, Any]]]  # persona run: what clean-up changed per turn
    meta: NotRequired[dict[str, Any]]  # persona check: the input row's other fields
    repair: NotRequired[dict[str, Any]]  # persona check --repair: what was changed


class AgentSample(TypedDict):
    """`agent run`: one model call of a rollout, its exact input + reply (round_N/samples.jsonl)."""

    id: str
    messages: list[ChatMessage]
    tools: NotRequired[list[dict[str, Any]]]
    instance: str
    repeat: int
    round: int
    sample_index: int
    step: int
    purpose: str  # main | observation_summary | history_summary
    reward: float | None
    success: bool | None
    status: str
    run: str
    format_error: NotRequired[bool]  # main calls: the reply held no valid action


class Trajectory(TypedDict, total=False):
    """`agent run`: one rollout (round_N/trajectories.jsonl)."""

    id: Required[str]
    instance: Required[str]
    repeat: int
    round: int
    run: str
    status: str
    error: str | None
    reward: float | None
    reward_rule: str | None
    success: bool | None
    steps: int
    history: list[ChatMessage]
    tools: list[dict[str, Any]] | None
    calls: list[dict[str, Any]]
    task: dict[str, Any]


class PreferencePair(TypedDict):
    """`agent pairs`: the same exact input, the better and the worse reply."""

    id: str
    messages: list[ChatMessage]
    chosen: list[ChatMessage]
    rejected: list[ChatMessage]
    tools: NotRequired[list[dict[str, Any]]]
    instance: str
    round: int
    step: int
    reward_chosen: float
    reward_rejected: float
    margin: float
    run: str | None
    repeats: list[int]


# Metadata the formats read (selection, statistics, merge provenance, KTO labels).
MetaKey = Literal["id", "run", "round", "instance", "repeat", "sample_index", "step", "purpose", "reward",
                  "success", "status", "format_error", "passed", "filter_reasons", "checks", "judge", "persona",
                  "turn", "label", "score", "reasons"]
# Keys the formats add or accept from other tools' files rather than from our records.
FOREIGN_META = frozenset({"turn", "label", "score", "reasons"})
RECORDS: tuple[type, ...] = (PersonaDialogue, AgentSample, Trajectory, PreferencePair)


def meta(record: Mapping[str, Any], key: MetaKey, default: Any = None) -> Any:
    """`record[key]` or `default`: the one way the formats read a record's metadata."""
    return record.get(key, default)
