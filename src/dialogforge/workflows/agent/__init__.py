"""Agent rollouts in real environments -> rewards, trajectories and exact SFT samples.

    from dialogforge.engine import Engine
    from dialogforge.workflows.agent import load_agent_config, load_tasks, run_agent
    engine = Engine.load("examples/agent/config.yaml")
    cfg = load_agent_config(engine.config)       # the `agent:` section of the config the engine read
    tasks = load_tasks("examples/agent/tasks.jsonl")
    result = asyncio.run(run_agent(engine, cfg, tasks, "out", rounds=[1, 2, 3], repeats=4))
"""
from .config import AgentConfig, load_agent_config, parse_agent_config
from .envs.base import Environment, EnvError, EvalResult, ExecResult
from .pairs import preference_pairs
from .rollout import Rollout, RolloutResult
from .run import AgentRunResult, round_outputs, run_agent, summarize
from .tasks import PRESETS, Task, load_tasks, map_record, write_tasks

__all__ = [
    "AgentConfig", "load_agent_config", "parse_agent_config", "Environment", "EnvError", "EvalResult",
    "ExecResult", "Rollout", "RolloutResult", "AgentRunResult", "round_outputs", "run_agent", "summarize",
    "PRESETS", "Task", "load_tasks", "map_record", "write_tasks", "preference_pairs",
]
