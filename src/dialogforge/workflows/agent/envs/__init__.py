from .base import Environment, EnvError, EvalResult, ExecResult, make_environment, parse_eval_output

__all__ = ["Environment", "EnvError", "EvalResult", "ExecResult", "make_environment", "parse_eval_output"]
