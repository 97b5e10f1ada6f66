"""Environments: the interface (`base`), the registry of named ones, and loading `package.module:Class`.

    environment: {type: local}                        # a name from ENVIRONMENTS
    environment: {type: mypkg.envs:ClusterEnvironment}  # any Environment subclass

Named environments are imported only when used, so `docker` costs nothing to a `local` run.
"""
from __future__ import annotations

from ....engine.errors import ConfigError
from ..config import EnvironmentConfig
from ..tasks import Task
from .base import Environment, EnvError, EvalResult, ExecResult, import_object, parse_eval_output

ENVIRONMENTS: dict[str, str] = {
    "local": "dialogforge.workflows.agent.envs.local:LocalEnvironment",
    "docker": "dialogforge.workflows.agent.envs.docker:DockerEnvironment",
}


def environment_class(kind: str) -> type[Environment]:
    """The class for `environment.type`: a registered name or "package.module:Class"."""
    path = ENVIRONMENTS.get(kind, kind)
    if ":" not in path:
        raise ConfigError(f"environment.type: {kind!r} is neither one of {', '.join(sorted(ENVIRONMENTS))} "
                          "nor 'package.module:Class'")
    cls = import_object(path)
    if not (isinstance(cls, type) and issubclass(cls, Environment)):
        raise ConfigError(f"environment.type: {kind!r} is not a subclass of dialogforge's agent Environment")
    return cls


def make_environment(config: EnvironmentConfig, task: Task) -> Environment:
    return environment_class(config.type)(config, task)


def check_environment(config: EnvironmentConfig, tasks: list[Task] | None = None) -> type[Environment]:
    """Everything checkable before the first model call: the class loads, the config runs, each task can be
    evaluated. Errors are one line naming the field or the task."""
    cls = environment_class(config.type)
    cls.check_config(config)
    for t in tasks or []:
        why = cls.check_task(t)
        if why:
            raise ConfigError(f"task {t.id}: {why}")
    return cls



__all__ = ["ENVIRONMENTS", "Environment", "EnvError", "EvalResult", "ExecResult", "check_environment",
           "environment_class", "import_object", "make_environment", "parse_eval_output"]
