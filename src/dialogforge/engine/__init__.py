"""The engine every workflow stands on: LLM access, concurrency, caching, run store, runner."""
from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from ..core.console import stderr_console

from .replicas import ReplicaSet
from .client import LLM, Stats
from .config import EMBEDDED_MODEL, Config, EndpointConfig, load_config, parse_config, with_overrides
from .errors import (APIConnectionError, APIError, APIStatusError, ConfigError, DialogforgeError, InputError,
                     ItemFailed, NotFoundError, StructuredOutputError)
from .io import count_items, read_items
from .limits import Gate
from .identity import RunChanged
from .executors import Executor, LocalExecutor, Shippable, make_executor
from .runner import (ItemContext, ItemResult, ProcessFn, Records, RunCrashed, RunResult, _normalise_outputs, execute,
                     run_id_for)
from .outputs import check_paths
from .store import RunStore
from .types import ChatResponse, ItemStatus, RunStatus, Usage

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "Engine", "ItemContext", "RunResult", "ChatResponse", "Usage", "Config", "EndpointConfig", "RunStore",
    "read_items", "count_items", "load_config", "ItemFailed", "DialogforgeError", "ConfigError", "InputError",
    "APIError", "APIConnectionError", "APIStatusError", "NotFoundError", "StructuredOutputError",
    "Records", "ItemResult", "ItemStatus", "RunStatus", "RunCrashed", "RunChanged",
    "Executor", "Shippable", "make_executor",
]

EMBEDDED_ENDPOINT = "embedded"


class Engine:
    """Config + run store + one LLM per endpoint, created on first use.

    Roles ("generator", "judge", "user", "agent", ...) resolve to endpoints through
    ``config.roles``; with no endpoints configured every role uses the embedded model.
    """

    def __init__(self, config: Config, store: RunStore | str | os.PathLike | None = None,
                 console: Console | None = None):
        self.config = config
        self._store: RunStore | None = None  # opened on first use (``store``)
        self._store_path: str | os.PathLike | None = None
        if store is None or isinstance(store, (str, os.PathLike)):
            self._store_path = store or config.store
        else:
            self._store = store
        self.stats = Stats()
        self.console = console or stderr_console()
        self._llms: dict[str, LLM] = {}
        self._global: Gate | None = None
        self.executor: Executor = LocalExecutor()  # where items run (engine/executors): local, ray, batch

    # --- construction -------------------------------------------------------------------
    @classmethod
    def load(cls, config_path: str | os.PathLike | None = None, *, base_url: str | None = None,
             model: str | None = None, api_key_env: str | None = None, store: str | os.PathLike | None = None,
             roles: list[str] | None = None) -> "Engine":
        return cls.from_config(load_config(config_path), base_url=base_url, model=model, api_key_env=api_key_env,
                               store=store, roles=roles)

    @classmethod
    def from_config(cls, config: Config, *, base_url: str | None = None, model: str | None = None,
                    api_key_env: str | None = None, store: str | os.PathLike | None = None,
                    roles: list[str] | None = None) -> "Engine":
        """An engine from a parsed config, with the command line's endpoint flags applied."""
        cfg = with_overrides(config, base_url=base_url, model=model, api_key_env=api_key_env, roles=roles)
        return cls(cfg, store)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, store: str | os.PathLike | None = None) -> "Engine":
        return cls(parse_config(data), store)

    @property
    def store(self) -> RunStore:
        """The run store, opened on first use: a command that stops on a bad input before its run creates none."""
        if self._store is None:
            self._store = RunStore(self._store_path)
        return self._store

    @store.setter
    def store(self, value: RunStore) -> None:
        self._store = value

    @property
    def store_path(self) -> Path:
        """Where the run store is (or will be), without opening it."""
        if self._store is not None:
            return Path(self._store.path)
        from .store import default_store_path
        return Path(self._store_path) if self._store_path else default_store_path()

    def existing_store(self) -> RunStore | None:
        """The run store when it is open or its file exists; None (and no file made) otherwise."""
        if self._store is None and not self.store_path.exists():
            return None
        return self.store

    # --- LLM access -----------------------------------------------------------------------
    def endpoint_name(self, role: str) -> str:
        if not self.config.endpoints:
            return EMBEDDED_ENDPOINT
        return self.config.endpoint_for(role)

    def endpoint_config(self, role: str) -> EndpointConfig:
        name = self.endpoint_name(role)
        return self.config.endpoints.get(name) or EndpointConfig(backend="embedded", model=EMBEDDED_MODEL,
                                                                  concurrency=4)

    def llm(self, role: str) -> LLM:
        name = self.endpoint_name(role)
        llm = self._llms.get(name)
        if llm is None:
            if self._global is None:
                self._global = Gate(self.config.concurrency)
            cfg = self.endpoint_config(role)
            replicas = ReplicaSet.from_config(name, cfg, self._global.maximum)
            llm = LLM(name, cfg, replicas, self.store, self._global, self.stats)
            self._llms[name] = llm
        return llm

    async def chat(self, messages: list[dict], *, role: str = "generator", **kwargs: Any) -> ChatResponse:
        """One call outside any run (scripts, notebooks). Logged and cached like the rest."""
        return await self.llm(role).chat(messages, **kwargs)

    def same_endpoint(self, role_a: str, role_b: str) -> bool:
        a, b = self.endpoint_config(role_a), self.endpoint_config(role_b)
        return (a.replica_list(), a.model, a.backend) == (b.replica_list(), b.model, b.backend)

    async def preflight(self, roles: Iterable[str]) -> None:
        """Check each remote endpoint once before a run: reachable, key accepted, model served.

        Raises one clear error instead of letting a thousand items fail."""
        from ..core.console import escape

        from .preflight import check_endpoint
        seen = set()
        for role in roles:
            name = self.endpoint_name(role)
            if name not in seen:
                seen.add(name)
                for warning in await check_endpoint(self.llm(role)):
                    self.console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)

    # --- runs ---------------------------------------------------------------------------------
    async def run(self, *, name: str, items: Iterable[tuple[str, dict]], process: ProcessFn,
                  output: str | os.PathLike | dict[str, Any], concurrency: int = 64, retry_failed: bool = False,
                  run_id: str | None = None, total: int | None = None, use_cache: bool = True,
                  progress: bool = True, roles: Iterable[str] | None = None, check: bool = True,
                  identity: dict[str, Any] | None = None, continue_: bool = False) -> RunResult:
        """Run ``process`` over ``items`` into ``output`` (see ``runner``).

        ``identity``: what else shapes the outputs besides the roles' models and parameters
        (templates, environment, a hash of the input items); a rerun into the same outputs with
        another identity is refused unless ``continue_``."""
        roles = list(roles) if roles is not None else list(self.config.roles or ["generator"])
        check_paths(_normalise_outputs(output))  # before the pre-run check opens the run store
        executor = self.run_executor()
        if check and not getattr(executor, "offline", False):  # --batch-file: no server to ask
            await self.preflight(roles)
        ident = {"models": self.model_identity(roles), **(identity or {})}
        rid = run_id or run_id_for(name, _normalise_outputs(output))
        if getattr(executor, "all_items_at_once", False):
            concurrency = 10**9  # batch mode: every item must reach its next uncached call in each round
        async with executor.session(self, process, run_id=rid, concurrency=concurrency) as item_fn:
            return await execute(self, name=name, items=items, process=item_fn, output=output,
                                 concurrency=concurrency, retry_failed=retry_failed, run_id=rid, total=total,
                                 use_cache=use_cache, progress=progress, console=self.console, identity=ident,
                                 continue_=continue_)

    def model_identity(self, roles: Iterable[str]) -> dict[str, Any]:
        """What each role's endpoint contributes to a run's identity: backend, model and sampling
        parameters (not its URL, keys or limits)."""
        out = {}
        for role in sorted(set(roles)):
            cfg = self.endpoint_config(role)
            out[role] = {"backend": cfg.backend, "model": cfg.model, "params": cfg.params,
                         "structured_output": cfg.structured_output}
        return out

    def run_executor(self) -> Executor:
        """The executor runs use: the one set, or batch mode for the endpoints configured ``mode: batch``."""
        batch = [n for n, c in self.config.endpoints.items() if c.mode == "batch"]
        if batch and self.executor.name == "local":
            return make_executor("batch", endpoints=batch)
        return self.executor

    def run_sync(self, **kwargs: Any) -> RunResult:
        async def main() -> RunResult:
            try:
                return await self.run(**kwargs)
            finally:
                await self.aclose()
        return asyncio.run(main())

    async def aclose(self) -> None:
        if self._store is not None:
            self._store.drain()
        for llm in self._llms.values():
            await llm.aclose()
        self._llms.clear()
        self._global = None

    async def __aenter__(self) -> "Engine":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
