"""Reward from an evaluation: tiers over a measured metric, gated by the task's own check.

  env error                  -> reward None, status "env_error" (never a silent 0)
  never submitted            -> failure_reward (unless require_submit is off)
  check failed               -> failure_reward
  check passed, metric tiers -> the first tier whose `min` the metric reaches
  check passed, no tier      -> success_reward
"""
from __future__ import annotations

import math

from .config import RewardConfig
from .envs.base import EvalResult


def compute_reward(ev: EvalResult, cfg: RewardConfig, *, submitted: bool = True) -> tuple[float | None, dict]:
    """Returns (reward, explanation) for the evaluation; the explanation goes into the trajectory."""
    if ev.status != "ok":
        return None, {"rule": "env_error"}
    if cfg.require_submit and not submitted:
        return cfg.failure_reward, {"rule": "not_submitted"}
    if not ev.success:
        return cfg.failure_reward, {"rule": "check_failed"}
    if cfg.use_evaluator_reward and ev.reward is not None:
        return float(ev.reward), {"rule": "evaluator_reward"}
    if cfg.metric and cfg.tiers:
        value = ev.metrics.get(cfg.metric)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            r = cfg.success_reward if cfg.no_metric_reward is None else cfg.no_metric_reward
            return r, {"rule": "metric_missing", "metric": cfg.metric}
        for tier in cfg.tiers:  # sorted by min, highest first
            if value >= tier.min:
                return tier.reward, {"rule": "tier", "metric": cfg.metric, "value": value, "min": tier.min}
        return cfg.success_reward, {"rule": "below_tiers", "metric": cfg.metric, "value": value}
    return cfg.success_reward, {"rule": "check_passed"}
