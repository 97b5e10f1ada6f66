"""Backends: how a request body reaches a model. Every backend takes and returns OpenAI wire dicts.

A backend is chosen by the endpoint's ``backend:`` name from a registry: the built-in ``openai``
(aiohttp to any OpenAI-compatible server) and ``embedded`` (SmolLM2 in-process), plus any a plugin
package declares as an entry point in the group ``dialogforge.backends``::

    [project.entry-points."dialogforge.backends"]
    mybackend = "my_package.backend:MyBackend"      # a class implementing ``Backend``

Only the backend an endpoint names is imported, when the endpoint is first used; entry points are
read only for a name that is not built in.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..config import EndpointConfig

GROUP = "dialogforge.backends"
BUILTIN = {
    "openai": "dialogforge.engine.backends.remote:RemoteBackend",
    "embedded": "dialogforge.engine.backends.embedded:EmbeddedBackend",
}


class Backend(Protocol):
    """What the engine needs from a backend; errors are ``engine.errors.APIError`` subclasses."""

    name: str

    @classmethod
    def from_config(cls, cfg: "EndpointConfig") -> "Backend":
        """The backend for one endpoint (a ConfigError when its settings do not fit)."""
        ...

    async def complete(self, body: dict, *, api_key: str | None = None, timeout: float | None = None,
                       payload: bytes | None = None) -> dict:
        """Send one chat-completions request body; ``payload`` is that body already serialised."""
        ...

    async def list_models(self, *, api_key: str | None = None, timeout: float = 10.0) -> list[str] | None:
        """The models served, for the pre-run check; None when the backend cannot tell.

        Raises ``AuthenticationError`` for a rejected key and ``APIConnectionError`` when unreachable;
        a ConfigError when the backend cannot run here at all (a missing package or file)."""
        ...

    async def aclose(self) -> None: ...


_plugins: dict[str, str] | None = None


def plugins() -> dict[str, str]:
    """Backends declared by installed packages (entry points), read once."""
    global _plugins
    if _plugins is None:
        from importlib.metadata import entry_points
        _plugins = {ep.name: ep.value for ep in entry_points(group=GROUP)}
    return _plugins


def target(name: str) -> str | None:
    """``module:Class`` of a backend name, or None when no such backend is known."""
    return BUILTIN.get(name) or plugins().get(name)


def check_backend_name(name: str) -> None:
    """ValueError naming the known backends when ``name`` is not one (config validation calls this)."""
    if target(name) is None:
        known = sorted({*BUILTIN, *plugins()})
        raise ValueError(f"unknown backend {name!r} (known: {', '.join(known)}; "
                         f"plugins add theirs as entry points in the group {GROUP!r})")


def make_backend(cfg: "EndpointConfig") -> Backend:
    """Import the endpoint's backend (only that one) and build it from the endpoint's config."""
    from ..errors import ConfigError
    name = cfg.backend or "embedded"
    spec = target(name)
    if spec is None:
        check_backend_name(name)
    assert spec is not None
    module, _, attr = spec.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"backend {name!r} ({spec}) cannot be loaded: {e}") from None
    backend: Backend = cls.from_config(cfg)
    return backend
