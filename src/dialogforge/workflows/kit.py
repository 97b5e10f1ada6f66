"""The workflow kit: what every workflow needs besides the engine, in one place.

A workflow is its config model, its templates, its ``process`` and its CLI module::

    from dialogforge.workflows.kit import Prompts, Strict, load_section, override

    class MyConfig(Strict):                       # unknown fields are errors
        seeds: str
        templates: dict[str, str] = {}            # name -> file (relative to the config) or text
        base_dir: str = "."                       # set to the config file's folder by load_section

    cfg = load_section(engine.config, "mine", MyConfig)          # FILE:LINE: mine.field: message
    cfg = override(cfg, {"seeds": cli_seeds, "limits.n": n})     # flags; None values are skipped
    prompts = Prompts(TEMPLATE_DIR, ("ask", "judge"), overrides=cfg.templates,
                      base_dir=cfg.base_dir, section="mine.templates")
    text = prompts.render("ask", question=q)

Declare the section in pyproject.toml (``[project.entry-points."dialogforge.config_sections"]``,
``mine = "package.module:MyConfig"``) so the engine accepts the top-level key.
"""
from __future__ import annotations

import hashlib

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from ..engine.config import Price, RequestParams
from ..engine.errors import ConfigError
from ..engine.sections import Strict, known_keys, load_section, override, register_section, validate

if TYPE_CHECKING:
    import jinja2  # imported where templates are compiled: a workflow without templates (generate) starts faster

__all__ = ["Strict", "load_section", "override", "register_section", "validate", "Prompts", "Price", "RequestParams",
           "known_keys", "templates_in_dir", "ConfigError"]

TEMPLATE_SUFFIXES = (".j2", ".jinja", ".txt", ".md")


class Prompts:
    """A workflow's Jinja templates: ``<builtin_dir>/<name>.j2`` unless the config overrides a name.

    The one way to override a template: ``overrides[name]`` is a file path (relative to ``base_dir``)
    or the template text itself. Every template is compiled here, so a syntax error stops the run
    before its first item, naming the file (or config field) and line.

    ``trim``: Jinja's trim_blocks/lstrip_blocks. ``tidy``: strip trailing spaces and collapse runs of
    blank lines that conditionals leave. ``globals``: values every template sees."""

    def __init__(self, builtin_dir: str | Path, names: Iterable[str], *,
                 overrides: Mapping[str, str | None] | None = None, base_dir: str | Path = ".",
                 section: str = "templates", globals: Mapping[str, Any] | None = None,
                 trim: bool = False, tidy: bool = False):
        self.names = tuple(names)
        self.globals = dict(globals or {})
        self.tidy = tidy
        import jinja2
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False,
                                 trim_blocks=trim, lstrip_blocks=trim)
        given = {k: v for k, v in (overrides or {}).items() if v}
        unknown = sorted(set(given) - set(self.names))
        if unknown:
            raise ConfigError(f"{section}: unknown template(s) {', '.join(unknown)} (known: {', '.join(self.names)})")
        self.templates: dict[str, jinja2.Template] = {}
        self.digests: dict[str, str] = {}  # name -> hash of its text: part of a run's identity
        for name in self.names:
            text, source = _source(name, given.get(name), Path(builtin_dir), Path(base_dir), section)
            self.digests[name] = hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
            try:
                self.templates[name] = env.from_string(text)
            except jinja2.TemplateSyntaxError as e:
                raise ConfigError(f"{source}:{e.lineno}: template syntax error: {e.message}") from None

    def render(self, name: str, **values: Any) -> str:
        name = name.removesuffix(".j2")
        import jinja2
        try:
            text = self.templates[name].render(**self.globals, **values).strip()
        except jinja2.UndefinedError as e:
            raise ConfigError(f"template {name!r}: {e.message}") from None
        if not self.tidy:
            return text
        out: list[str] = []
        for ln in text.split("\n"):
            if not ln.strip() and out and not out[-1].strip():
                continue
            out.append(ln.rstrip())
        return "\n".join(out)


def _source(name: str, override: str | None, builtin_dir: Path, base_dir: Path, section: str) -> tuple[str, str]:
    """(template text, where it came from) for one name."""
    if not override:
        path = builtin_dir / f"{name}.j2"
        return path.read_text(encoding="utf-8"), str(path)
    p = Path(override).expanduser()
    p = p if p.is_absolute() else base_dir / p
    if "\n" not in override and p.suffix in TEMPLATE_SUFFIXES:
        if not p.is_file():
            raise ConfigError(f"{section}.{name}: template file not found: {p}")
        try:
            return p.read_text(encoding="utf-8"), str(p)
        except UnicodeDecodeError:
            raise ConfigError(f"{p}: not UTF-8 text") from None
    return override, f"{section}.{name}"


def templates_in_dir(folder: str | Path, names: Iterable[str], field: str) -> dict[str, str]:
    """``{name: path}`` for the ``<name>.j2`` files of a folder (a shorthand for listing each one);
    a .j2 file that is not a known template is an error."""
    d = Path(folder)
    if not d.is_dir():
        raise ConfigError(f"{field}: {d} is not a directory")
    known = tuple(names)
    unknown = sorted(p.name for p in d.glob("*.j2") if p.stem not in known)
    if unknown:
        raise ConfigError(f"{field}: unknown template(s) {', '.join(unknown)} in {d} "
                          f"(known: {', '.join(n + '.j2' for n in known)})")
    return {p.stem: str(p.resolve()) for p in sorted(d.glob("*.j2"))}
