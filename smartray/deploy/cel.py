"""CEL rules of CRD schemas (`x-kubernetes-validations`), evaluated with `celpy`.

Rules compile once per text and are reused across objects. Transition rules (those that
read `oldSelf`) are reported as such: the API server evaluates them on updates only.
celpy is not Kubernetes' own CEL: the Kubernetes extension functions (quantity, url,
format, ...) are missing, and a rule that uses one is reported as not evaluable.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import celpy
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

_KEYS = ("rule", "messageExpression")


def rule_errors(x: Any, rules: list[Mapping[str, Any]], path: str) -> list[tuple[str, str]]:
    """(path, message) for each rule in `rules` that `x` (the value at `path`) breaks."""
    errors: list[tuple[str, str]] = []
    activation: dict[str, Any] | None = None
    for spec in rules:
        text = spec.get("rule")
        if not isinstance(text, str):
            continue
        rule = compile_rule(text)
        where = _path(path, spec.get("fieldPath"))
        if rule.program is None:
            errors.append((where, f"rule {text!r} does not compile: {rule.problem}"))
            continue
        if rule.transition:
            continue  # reads oldSelf: the server evaluates it on updates only
        if activation is None:
            try:
                activation = {"self": json_to_cel(x)}
            except Exception as e:  # a value YAML can hold but JSON cannot (bytes, sets)
                return [*errors, (path, f"value cannot be given to CEL rules: {brief(e)}")]
        result, problem = _evaluate(rule.program, activation)
        if problem:
            errors.append((where, f"rule {text!r} could not be evaluated: {problem}"))
        elif not isinstance(result, bool | celpy.celtypes.BoolType):
            errors.append((where, f"rule {text!r} did not evaluate to a bool: {result!r}"))
        elif not result:
            errors.append((where, _message(spec, text, activation)))
    return errors


@dataclass(frozen=True)
class Rule:
    """A compiled rule; `program` is None (and `problem` says why) if it does not compile."""

    program: celpy.Runner | None
    transition: bool
    problem: str


def expressions(schema: Mapping[str, Any]) -> list[str]:
    """Lists the CEL rules and message expressions anywhere in `schema`."""
    found: list[str] = []
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for rule in node.get("x-kubernetes-validations") or ():
                if isinstance(rule, dict):
                    found += [v for k, v in rule.items() if k in _KEYS and isinstance(v, str)]
            stack.extend(v for k, v in node.items() if k not in ("default", "enum", "example"))
        elif isinstance(node, list):
            stack.extend(node)
    return found


@functools.cache
def _env() -> celpy.Environment:
    return celpy.Environment()


@functools.cache
def compile_rule(text: str) -> Rule:
    """Compiles a CEL rule once; programs are reused across objects."""
    env = _env()
    try:
        ast = env.compile(text)
        old_self = ast.scan_values(lambda v: getattr(v, "type", "") == "IDENT" and v == "oldSelf")
        return Rule(env.program(ast), any(True for _ in old_self), "")
    except Exception as e:  # celpy raises parse errors of several kinds
        return Rule(None, False, brief(e))


def _evaluate(program: celpy.Runner, activation: dict[str, Any]) -> tuple[Any, str]:
    try:
        result = program.evaluate(activation)
    except Exception as e:  # CELEvalError mostly, but celpy lets some TypeErrors through
        return None, brief(e)
    if isinstance(result, CELEvalError):
        return None, brief(result)
    return result, ""


def _message(spec: Mapping[str, Any], text: str, activation: dict[str, Any]) -> str:
    expression = spec.get("messageExpression")
    if isinstance(expression, str):
        rule = compile_rule(expression)
        if rule.program is not None:
            result, problem = _evaluate(rule.program, activation)
            if not problem and isinstance(result, str) and result.strip():
                return str(result)
    message = spec.get("message")
    return message if isinstance(message, str) and message else f"failed rule: {text}"


def _path(path: str, field_path: Any) -> str:
    if not isinstance(field_path, str) or not field_path:
        return path
    return f"{path}{field_path}" if path else field_path.lstrip(".")


def brief(e: BaseException) -> str:
    """The first line of an error, without celpy's activation dump, at most 200 chars."""
    text = str(e.args[0]) if e.args else type(e).__name__
    text = text.split(" (in activation", 1)[0]
    return text if len(text) <= 200 else text[:197] + "..."
