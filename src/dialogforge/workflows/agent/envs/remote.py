"""Local sandbox for the agent's commands, evaluation by a remote service (e.g. a GPU benchmark farm).

    environment:
      type: dialogforge.workflows.agent.envs.remote:RemoteEvalEnvironment
      options: {url: "http://eval-host:9000/evaluate", timeout: 1800, headers: {X-Team: a}}

At evaluation the final diff is POSTed as JSON {"instance_id", "diff", "metadata"}; the service answers
{"success": bool, "reward"?: number, "error"?: str, ...metrics (e.g. "speedup")}. An unreachable service,
an HTTP error status or an answer without a boolean "success" is an environment error (reward None);
{"success": false, "error": ...} is the task failing (the change did not build, tests failed, ...).
"""
from __future__ import annotations

import json

import aiohttp

from .base import EnvError, EvalResult
from .local import LocalEnvironment


class RemoteEvalEnvironment(LocalEnvironment):
    async def evaluate(self) -> EvalResult:
        opts = self.config.options
        url = opts.get("url")
        if not url:
            raise EnvError("environment.options.url: required for RemoteEvalEnvironment")
        payload = {"instance_id": self.task.id, "diff": await self.diff(), "metadata": self.task.metadata}
        timeout = aiohttp.ClientTimeout(total=float(opts.get("timeout", self.config.eval_timeout)))
        try:
            async with aiohttp.ClientSession(timeout=timeout, headers=opts.get("headers") or {}) as s:
                async with s.post(url, json=payload) as resp:
                    text = await resp.text()
                    if resp.status >= 400:
                        raise EnvError(f"evaluation service {url} answered HTTP {resp.status}: {text[:300]}")
        except (aiohttp.ClientError, TimeoutError) as e:
            raise EnvError(f"evaluation service {url} unreachable: {type(e).__name__}: {e}") from None
        try:
            body = json.loads(text)
        except json.JSONDecodeError:
            raise EnvError(f"evaluation service {url} answered non-JSON: {text[:300]!r}") from None
        if not isinstance(body, dict) or not isinstance(body.get("success"), bool):
            raise EnvError(f"evaluation service {url}: answer lacks a boolean 'success': {text[:300]}")
        reward = body.get("reward")
        metrics = {k: v for k, v in body.items()
                   if k not in ("success", "reward", "error") and isinstance(v, (int, float, bool, str))}
        details = {"service": url}
        if body.get("error"):
            details["error"] = str(body["error"])
        return EvalResult(success=body["success"], reward=float(reward) if isinstance(reward, (int, float)) else None,
                          metrics=metrics, details=details)
