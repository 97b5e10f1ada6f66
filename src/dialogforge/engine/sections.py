"""The config plumbing every workflow shares: one strict base model, YAML read with line numbers,
one error shape (``FILE:LINE: dotted.field: message``), a workflow section loaded into its pydantic
model, and one way to apply overrides (command-line flags, keyword arguments) to a validated model.

Workflow sections (``persona:``, ``agent:``, ...) are declared as entry points in the group
``dialogforge.config_sections`` (``name = "package.module:Model"``) so that a top-level key no one
declared is an error naming the nearest valid one; ``register_section`` adds one at run time.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, TypeVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import ConfigError

if TYPE_CHECKING:  # PyYAML loads when a config file is read: a run from flags alone starts without it
    import yaml

SECTION_GROUP = "dialogforge.config_sections"
Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """Base of every config model: an unknown field is an error, never ignored."""

    model_config = ConfigDict(extra="forbid")


# --- YAML with line numbers -------------------------------------------------------------------

def read_yaml_lines(path: str | os.PathLike) -> tuple[Any, dict[Loc, int]]:
    """A YAML file's content and the 1-based line of every key and list entry (by its path).

    A missing file, a folder, text that is not UTF-8 or a syntax error is a ConfigError naming file:line."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file not found: {p}")
    if p.is_dir():
        raise ConfigError(f"{p}: is a folder, not a config file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        line = p.read_bytes()[:e.start].count(b"\n") + 1
        raise ConfigError(f"{p}:{line}: not UTF-8 text") from None
    import yaml
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark else str(p)
        raise ConfigError(f"invalid YAML in {where}: {getattr(e, 'problem', e)}") from None
    if _cyclic(data, set()):
        raise ConfigError(f"{p}: a YAML alias (*name) refers to a node that holds it: the config never ends")
    lines: dict[Loc, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return (data if data is not None else {}), lines


def _cyclic(value: Any, above: set[int]) -> bool:
    """Whether `value` contains itself (YAML anchors can make a list or mapping that does)."""
    if not isinstance(value, (dict, list)):
        return False
    if id(value) in above:
        return True
    above.add(id(value))
    found = any(_cyclic(v, above) for v in (value.values() if isinstance(value, dict) else value))
    above.discard(id(value))
    return found


def _walk(node: yaml.Node, loc: Loc, out: dict[Loc, int]) -> None:
    import yaml
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = loc + (str(k.value),)
            out[key] = k.start_mark.line + 1
            _walk(v, key, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            out[loc + (i,)] = v.start_mark.line + 1
            _walk(v, loc + (i,), out)


def line_of(lines: dict[Loc, int], loc: Loc) -> int | None:
    """The line of ``loc``, else of its nearest ancestor present in the file."""
    for n in range(len(loc), 0, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


# --- one error shape ------------------------------------------------------------------------------

def where(source: str | None, lines: dict[Loc, int] | None, loc: Loc) -> str:
    """``FILE:LINE: dotted.field`` (the parts that are known)."""
    line = line_of(lines, loc) if lines else None
    src = source or "<config>"
    head = f"{src}:{line}" if line else src
    dotted = ".".join(str(p) for p in loc)
    return f"{head}: {dotted}" if dotted else head


def validation_error(err: ValidationError, *, source: str | None, lines: dict[Loc, int] | None = None,
                     prefix: Loc = (), model: type[BaseModel] | None = None) -> ConfigError:
    """A pydantic error as a ConfigError: one ``FILE:LINE: dotted.field: message`` line per problem."""
    msgs = []
    for e in err.errors():
        loc = tuple(e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            parent = _model_at(model, loc[:-1]) if model else None
            msg = "unknown field" + (_nearest_hint(str(loc[-1]), parent.model_fields) if parent else "")
        msgs.append(f"{where(source, lines, prefix + loc)}: {msg}")
    return ConfigError("\n".join(msgs))


def _model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at ``loc`` (None when it cannot be told)."""
    cur: Any = model
    for part in loc:
        container = _container(cur)
        if container is not None:  # a dict key or a list index: step into the value type
            cur = container
            continue
        m = _as_model(cur)
        if m is None or not isinstance(part, str) or part not in m.model_fields:
            return None
        cur = m.model_fields[part].annotation
    return _as_model(cur)


def _container(tp: Any) -> Any:
    for t in (tp, *get_args(tp)):
        if get_origin(t) is dict:
            return get_args(t)[1]
        if get_origin(t) is list:
            return get_args(t)[0]
    return None


def _as_model(tp: Any) -> type[BaseModel] | None:
    """The model ``tp`` is, or holds as ``X | None`` (not inside a dict or list: those add a loc part)."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    if get_origin(tp) in (dict, list, tuple):
        return None
    for arg in get_args(tp):
        m = _as_model(arg)
        if m is not None:
            return m
    return None


def known_keys(mapping: dict[str, Any], ours: Iterable[str]) -> dict[str, Any]:
    """A field validator's check of a free mapping whose keys must be our names (``fields: {ours: theirs}``):
    a misspelled key would be ignored, so it is an error naming the nearest one."""
    ours = tuple(ours)
    for key in mapping:
        if key not in ours:
            import difflib
            near = difflib.get_close_matches(key, ours, n=1, cutoff=0.6)
            raise ValueError(f"unknown name {key!r} (ours: {', '.join(ours)}" + (f"; did you mean {near[0]!r}?)" if near
                                                                                 else ")"))
    return mapping


def _nearest_hint(name: str, valid: Iterable[str]) -> str:
    import difflib
    near = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return f" (did you mean {near[0]!r}?)" if near else ""


# --- workflow sections ----------------------------------------------------------------------------

_registered: dict[str, str] = {}
_from_entry_points: dict[str, str] | None = None


def register_section(name: str, target: str = "") -> None:
    """Declare a top-level config section at run time (plugins declare theirs as entry points)."""
    _registered[name] = target


def known_sections() -> dict[str, str]:
    """Section name -> "module:Model" for every declared workflow section."""
    global _from_entry_points
    if _from_entry_points is None:
        from importlib.metadata import entry_points
        _from_entry_points = {ep.name: ep.value for ep in entry_points(group=SECTION_GROUP)}
    return {**_from_entry_points, **_registered}


def check_top_level(data: dict, engine_keys: Iterable[str], *, source: str | None,
                    lines: dict[Loc, int] | None) -> None:
    """Every top-level key is the engine's or a declared workflow section's; else name the nearest valid one."""
    engine_keys = set(engine_keys)
    extra = [k for k in data if k not in engine_keys]
    if not extra:
        return
    valid = engine_keys | set(known_sections())
    for k in extra:
        if str(k) not in valid:
            hint = _nearest_hint(str(k), valid) or f" (valid: {', '.join(sorted(valid))})"
            raise ConfigError(f"{where(source, lines, (str(k),))}: unknown top-level key{hint}")


def load_section(config: Any, name: str, model: type[M], *, required: bool = False) -> M:
    """A workflow's section of the engine's parsed config, validated by ``model``.

    Errors read ``FILE:LINE: name.field: message``. A model with a ``base_dir`` field gets the config
    file's folder (where relative paths resolve) unless the section sets it."""
    raw = config.extra.get(name)
    source = config.source or "<config>"
    lines = config.lines
    if raw is None:
        if required:
            raise ConfigError(f"{source}: the {name!r} section is missing")
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where(source, lines, (name,))}: must be a mapping")
    data = dict(raw)
    if "base_dir" in model.model_fields:
        data.setdefault("base_dir", str(config.base_dir))
    return validate(model, data, source=source, lines=lines, prefix=(name,))


def validate(model: type[M], data: Any, *, source: str | None, lines: dict[Loc, int] | None = None,
             prefix: Loc = ()) -> M:
    """``model.model_validate(data)`` with errors in the one shape."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise validation_error(e, source=source, lines=lines, prefix=prefix, model=model) from None


# --- overrides ------------------------------------------------------------------------------------

def override(obj: M, updates: dict[str, Any], *, source: str = "command line", prefix: Loc = ()) -> M:
    """A copy of ``obj`` with ``{"dotted.path": value}`` set (``None`` values are skipped), validated again.

    The one way flags and keyword arguments change a validated config; errors name the dotted field."""
    todo = {k: v for k, v in updates.items() if v is not None}
    if not todo:
        return obj
    data = obj.model_dump()
    for fname, field in type(obj).model_fields.items():
        if field.exclude:
            data[fname] = copy.deepcopy(getattr(obj, fname))
    for dotted, value in todo.items():
        node = data
        parts = dotted.split(".")
        for p in parts[:-1]:
            nxt = node.get(p)
            if not isinstance(nxt, dict):
                nxt = node[p] = {}
            node = nxt
        node[parts[-1]] = value
    return validate(type(obj), data, source=source, prefix=prefix)
