"""One check per endpoint before a run starts, through the ``Backend`` protocol, reported in one line.

Each server of the endpoint (each replica) is asked for its models once per configured key
(``list_models``). A rejected key or a model not served stops the run. A server that is unreachable
or answers with an error (5xx included) is taken out of rotation; when none of the endpoint's servers
answers, the run stops before its first item. A server without a model list (404) passes; the first
real call tells.
"""
from __future__ import annotations

import asyncio

from .client import LLM
from .errors import APIConnectionError, APIStatusError, AuthenticationError, ConfigError, NotFoundError
from .replicas import Replica

RETRY_DELAY = 0.5  # one more try after a 5xx or a dropped connection: a server may be warming up


async def check_endpoint(llm: LLM) -> list[str]:
    """Raise a ConfigError naming the problem, or return warnings (replicas taken out of rotation)."""
    reps = llm.replicas.replicas
    results = await asyncio.gather(*(_check_replica(llm, r) for r in reps))
    down = [(r, why) for r, why in zip(reps, results) if why]
    if len(down) == len(reps):
        raise ConfigError(down[0][1] if len(down) == 1 else
                          f"endpoint {llm.name!r}: none of its {len(reps)} servers answers: "
                          + "; ".join(why for _, why in down))
    warnings = []
    for r, why in down:
        llm.replicas.eject(r, "no answer before the run")
        warnings.append(f"{why}; the run goes on without it (probed again every {llm.cfg.probe_after:g} s)")
    return warnings


async def _check_replica(llm: LLM, r: Replica) -> str | None:
    """None when the server answers well; the reason when it does not answer (raises on a config error)."""
    where = f"endpoint {llm.name!r}" + (f" ({r.url})" if r.url else "")
    timeout = min(llm.cfg.timeout, 15.0)
    for key in llm.keys.keys():
        for attempt in range(2):
            try:
                models = await r.backend.list_models(api_key=key, timeout=timeout)
            except AuthenticationError as e:
                raise ConfigError(f"{where}: the API key was rejected ({e})") from None
            except NotFoundError:
                break  # some servers have no /models; the first real call will tell
            except APIConnectionError as e:
                if attempt:
                    return f"{where} is unreachable: {e}"
            except APIStatusError as e:
                if (e.status or 0) < 500:
                    break  # the server answered; a model list is not required
                if attempt:
                    return f"{where} answers with an error (HTTP {e.status}): {e}"
            else:
                if models and llm.model not in models:
                    shown = ", ".join(models[:10]) + (" ..." if len(models) > 10 else "")
                    raise ConfigError(f"{where} does not serve model {llm.model!r}; it serves: {shown}")
                break
            await asyncio.sleep(RETRY_DELAY)
    return None
