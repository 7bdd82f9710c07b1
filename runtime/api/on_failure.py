"""@on_failure (pycompss.api.on_failure): what happens when a task fails.

    @on_failure(management="IGNORE", returns=0, w=[])      # above or below @task
    @task(returns=1, w=INOUT)
    def step(v, w): ...

`management` is RETRY (the default), CANCEL_SUCCESSORS, FAIL or IGNORE; the table of what each
does is in runtime.core.failures. The other keywords are IGNORE's defaults: `returns` for the
return value(s) (a tuple gives one per value when there are several), a parameter's name for
the object it writes. Outputs with no default are None (files: empty). `@task(on_failure=...)`
is the shorthand without defaults.
"""
from __future__ import annotations

from ..core.failures import FailurePolicy, parse_policy
from ..master.calls import MasterValue
from ..transport.payload import SerializationError, serialize

ATTRIBUTE = "__superscalar_on_failure__"


class on_failure:  # noqa: N801 - the PyCOMPSs name
    def __init__(self, management: str = "RETRY", **defaults):
        self.policy = parse_policy(management, "@on_failure")
        self.defaults = defaults

    def __call__(self, function):
        setattr(function, ATTRIBUTE, (self.policy, self.defaults))
        return function


class FailureDefaults:
    """One task function's IGNORE defaults, serialized once, mapped to each call's outputs."""

    def __init__(self, defaults: dict, parameters, where: str):
        unknown = set(defaults) - set(parameters) - {"returns"}
        if unknown:
            raise ValueError(f"{where}: @on_failure default(s) {sorted(unknown)} name no "
                             f"parameter of the task (nor 'returns')")
        self._values: dict = {}
        for name, value in defaults.items():
            try:
                self._values[name] = MasterValue("obj", serialize(value))
            except SerializationError as error:
                raise ValueError(f"{where}: @on_failure default {name}=... cannot be "
                                 f"serialized: {error}") from None
        returns = defaults.get("returns")
        self._per_return = ([MasterValue("obj", serialize(v)) for v in returns]
                            if isinstance(returns, (tuple, list)) else None)

    def for_call(self, written: dict, return_keys: list, kinds: dict) -> dict:
        """{write key: MasterValue} for the outputs of one call that have a default.
        `written`: parameter name -> the keys describing it wrote."""
        chosen = {}
        if "returns" in self._values and return_keys:
            per_return = self._per_return
            if per_return is not None and len(per_return) == len(return_keys) > 1:
                chosen.update(zip(return_keys, per_return))
            else:
                chosen.update(dict.fromkeys(return_keys, self._values["returns"]))
        for name, value in self._values.items():
            keys = [key for key in written.get(name, ()) if kinds.get(key, "obj") == "obj"]
            if len(keys) == 1:
                chosen[keys[0]] = value
        return chosen


def policy_of(options: dict, where: str) -> FailurePolicy:
    return parse_policy(options.get("on_failure", "RETRY"), where)
