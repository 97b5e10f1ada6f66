"""One check per endpoint before a run starts, through the ``Backend`` protocol, reported in one line.

Each configured key is tried once (``list_models``): a rejected key, an unreachable server, a server
that answers with an error (5xx included) or one that does not serve the configured model stops the
run before its first item. A server without a model list (404) passes; the first real call tells.
"""
from __future__ import annotations

import asyncio

from .client import LLM
from .errors import APIConnectionError, APIStatusError, AuthenticationError, ConfigError, NotFoundError

RETRY_DELAY = 0.5  # one more try after a 5xx or a dropped connection: a server may be warming up


async def check_endpoint(llm: LLM) -> None:
    where = f"endpoint {llm.name!r}" + (f" ({llm.cfg.base_url})" if llm.cfg.base_url else "")
    timeout = min(llm.cfg.timeout, 15.0)
    for key in llm.keys.keys():
        models = await _models(llm, key, timeout, where)
        if models and llm.model not in models:
            shown = ", ".join(models[:10]) + (" ..." if len(models) > 10 else "")
            raise ConfigError(f"{where} does not serve model {llm.model!r}; it serves: {shown}")


async def _models(llm: LLM, key: str | None, timeout: float, where: str) -> list[str] | None:
    for attempt in range(2):
        try:
            return await llm.backend.list_models(api_key=key, timeout=timeout)
        except AuthenticationError as e:
            raise ConfigError(f"{where}: the API key was rejected ({e})") from None
        except NotFoundError:
            return None  # some servers have no /models; the first real call will tell
        except APIConnectionError as e:
            if attempt:
                raise ConfigError(f"{where} is unreachable: {e}") from None
        except APIStatusError as e:
            if (e.status or 0) < 500:
                return None  # the server answered; a model list is not required
            if attempt:
                raise ConfigError(f"{where} answers with an error (HTTP {e.status}): {e}") from None
        await asyncio.sleep(RETRY_DELAY)
    return None
