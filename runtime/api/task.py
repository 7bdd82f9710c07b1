"""@task: a function call becomes an asynchronous task (pycompss.api.task).

    @task(returns=1, c=INOUT)          returns: int, "2", a type, a tuple of types; per call
    def multiply(a, b, c): ...         multiply(a, b, c, returns=2) overrides it
The number of results is never guessed from the source text: it is what `returns` says.
"""
from __future__ import annotations

import functools
import inspect
import sys

from ..core.context import in_worker
from ..core.params import Direction, SpecError, spec_from_declaration
from ..core.records import DEFAULT_REQUIREMENTS, Requirements
from ..master.session import current_session
from ..core.failures import FailurePolicy
from .analysis import CallBuilder, CallError
from .future import Future
from .implement import implementations_of
from .on_failure import ATTRIBUTE as ON_FAILURE_ATTRIBUTE
from .on_failure import FailureDefaults, policy_of
from .parameter import IN, INOUT

# Options @task accepts besides parameter directions (PyCOMPSs names).
_OPTIONS = {"returns", "priority", "time_out", "varargs_type", "target_direction", "on_failure",
            "defaults", "cache_returns", "numba", "numba_flags", "numba_signature",
            "numba_declaration", "tracing_hook", "is_replicated", "is_distributed",
            "isModifier", "isReplicated", "isDistributed", "computing_nodes", "cache"}


def parse_returns(returns, where: str) -> int:
    if returns is None or returns is False:
        return 0
    if isinstance(returns, bool):
        return 1
    if isinstance(returns, int):
        if returns < 0:
            raise SpecError(f"{where}: returns={returns} must not be negative")
        return returns
    if isinstance(returns, str):
        if returns.strip().isdigit():
            return int(returns)
        raise SpecError(f"{where}: returns={returns!r} is not a number")
    if isinstance(returns, (tuple, list)):
        return len(returns)
    if isinstance(returns, type) or returns is not None:
        return 1
    return 0


class task:  # noqa: N801 - the PyCOMPSs name
    """The decorator. `task(**options)(function)` returns a TaskFunction."""

    def __new__(cls, *args, **options):
        if len(args) == 1 and callable(args[0]) and not options:
            return TaskFunction(args[0], {})          # bare @task
        if args:
            raise TypeError("@task takes keyword arguments only, e.g. @task(returns=1)")
        instance = super().__new__(cls)
        instance.options = options
        return instance

    def __call__(self, function):
        return TaskFunction(function, self.options)


class TaskFunction:
    def __init__(self, function, options: dict):
        functools.update_wrapper(self, function)
        self.function = function
        self.options = dict(options)
        self.name = function.__qualname__
        where = f"{_source_of(function)}: @task '{self.name}'"
        self.signature = inspect.signature(function)
        self.parameters = self.signature.parameters
        # Every parameter positional, none variadic: a call with exactly that many positional
        # arguments binds by zip, without inspect's Signature.bind (the common case, per task).
        self._positional_names = tuple(self.parameters) if all(
            p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            for p in self.parameters.values()) else None
        self.returns = parse_returns(options.get("returns"), where)
        self.priority = bool(options.get("priority", False))
        self.time_out = float(options.get("time_out", 0) or 0)
        self.varargs_spec = spec_from_declaration(options.get("varargs_type", IN), where)
        self.target_spec = spec_from_declaration(options.get("target_direction", INOUT), where)
        self.on_failure = policy_of(options, where)
        self.specs = self._parameter_specs(where)
        self._where = where
        self._failure_handling = None        # (policy, FailureDefaults | None), on first call
        # What a worker runs instead of the function's body: decorators stacked on @task
        # (@binary, @mpi, @container, @software, @prolog/@epilog) set it to a picklable callable
        # taking the same arguments. None: the body itself.
        self.runner = None
        self._static_requirements: Requirements | None = None   # cached when not per call
        self._function_id_by_session: dict = {}

    def _parameter_specs(self, where: str) -> dict:
        accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in self.parameters.values())
        specs = {}
        for name, declaration in self.options.items():
            if name in self.parameters or (accepts_any and name not in _OPTIONS):
                specs[name] = spec_from_declaration(declaration, f"{where}: parameter '{name}'")
            elif name not in _OPTIONS:
                raise SpecError(f"{where}: '{name}' is neither a parameter of the function nor "
                                f"a @task option")
        return specs

    # ---- calling ----------------------------------------------------------------------------
    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        return _BoundTask(self, instance)

    def __call__(self, *args, **kwargs):
        if in_worker():
            return (self.runner or self.function)(*args, **kwargs)
        return self.submit(args, kwargs, None)

    def __reduce__(self):
        return (_rebuild_task_function, (self.function, self.options, self.runner))

    def submit(self, args: tuple, kwargs: dict, target):
        """`target` is the instance of a method call (its first argument), else None."""
        session = current_session()
        call_site = _call_site()
        returns = self.returns
        if "returns" in kwargs and "returns" not in self.parameters:
            returns = parse_returns(kwargs.pop("returns"), f"{call_site}: @task '{self.name}'")
        if target is not None:
            args = (target, *args)
        arguments = self._bind(args, kwargs, call_site)
        try:
            requirements = self.requirements_for(arguments)
            variants = implementations_of(self)
            alternatives = (requirements, *(variant.requirements_for(arguments)
                                            for variant in variants)) if variants else None
        except (SpecError, ValueError, RuntimeError) as error:
            raise CallError(f"{call_site}: @task '{self.name}': {error}") from None
        builder = CallBuilder(session, self.name, call_site)
        policy, defaults = self._failure_policy()
        written = {} if defaults is not None else None
        entry_args, entry_kwargs = self._describe_arguments(builder, arguments, target, written)
        task_id = session.new_task_id()
        futures = self._returns(builder, session, returns, call_site)
        entry = {"id": task_id, "name": self.name, "fn": self._function_id(session),
                 "args": entry_args, "kwargs": entry_kwargs,
                 "returns": builder.writes[-returns:] if returns else [],
                 "units": requirements.computing_units, "time_out": self.time_out}
        if requirements.gpus:
            entry["gpu_count"] = requirements.gpus
        if self.options.get("cache"):
            entry["cache"] = True           # memoize (runtime.master.reuse)
        call = builder.build(task_id, entry["fn"], entry)
        if variants:
            call.variant_functions = (entry["fn"], *(v._function_id(session) for v in variants))
        call.on_failure = policy
        if defaults is not None:
            call.failure_defaults = defaults.for_call(written, entry["returns"], call.kinds)
        session.submit(call, requirements, self.priority,
                       session.group_stack[-1] if session.group_stack else None, alternatives)
        for function, arguments in builder.after_submit:
            function(*arguments)
        if returns == 0:
            return None
        return futures[0] if returns == 1 else tuple(futures)

    def _bind(self, args: tuple, kwargs: dict, call_site: str) -> dict:
        """Parameter name -> value, defaults applied."""
        names = self._positional_names
        if names is not None and not kwargs and len(args) == len(names):
            return dict(zip(names, args))
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as error:
            raise CallError(f"{call_site}: @task '{self.name}': {error}") from None
        bound.apply_defaults()
        return bound.arguments

    def _describe_arguments(self, builder: CallBuilder, arguments: dict, target,
                            written: dict | None = None) -> tuple[list, dict]:
        """`written`, if given, gets each parameter's name -> the version keys it writes."""
        entry_args, entry_kwargs = [], {}
        first = True
        for name, parameter in self.parameters.items():
            writes_before = len(builder.writes)
            value = arguments[name]
            if first and target is not None:
                spec = IN if isinstance(target, type) else self.specs.get(name, self.target_spec)
                entry_args.append(builder.describe(name, value, spec))
            elif parameter.kind is inspect.Parameter.VAR_POSITIONAL:
                spec = self.specs.get(name, self.varargs_spec)
                for index, item in enumerate(value):
                    entry_args.append(builder.describe(f"*{name}[{index}]", item, spec))
            elif parameter.kind is inspect.Parameter.VAR_KEYWORD:
                for key, item in value.items():
                    entry_kwargs[key] = builder.describe(key, item, self.specs.get(key, IN))
            elif parameter.kind is inspect.Parameter.KEYWORD_ONLY:
                entry_kwargs[name] = builder.describe(name, value, self.specs.get(name, IN))
            else:
                entry_args.append(builder.describe(name, value, self.specs.get(name, IN)))
            first = False
            if written is not None:
                written[name] = builder.writes[writes_before:]
        return entry_args, entry_kwargs

    def _returns(self, builder: CallBuilder, session, returns: int, call_site: str) -> list:
        futures = []
        for _ in range(returns):
            datum_id = session.registry.new_datum()
            access = session.registry.access(datum_id, Direction.OUT)
            builder.writes.append(access.write_key)
            futures.append(Future(datum_id, self.name, call_site, session))
        return futures

    def _function_id(self, session) -> int:
        function_id = self._function_id_by_session.get(id(session))
        if function_id is None:
            function_id = session.function_id(self.runner or self.function)
            self._function_id_by_session = {id(session): function_id}
        return function_id

    def requirements_for(self, arguments: dict) -> Requirements:
        """This call's requirements: @constraint (static, or per call when a value names a
        parameter), then what a @mpi/@binary runner adds (processes per node, nodes)."""
        requirements = self._static_requirements
        if requirements is None:
            spec = getattr(self, "__superscalar_constraint__", None) or getattr(
                self.function, "__superscalar_constraint__", None)
            if spec is None:
                requirements = self._static_requirements = DEFAULT_REQUIREMENTS
            elif spec.parameter_names(self.parameters):
                requirements = spec.resolve(arguments)
            else:
                requirements = self._static_requirements = spec.resolve()
        adjust = getattr(self.runner, "adjust_requirements", None)
        return adjust(requirements, arguments) if adjust is not None else requirements

    def _failure_policy(self) -> tuple:
        """(policy, FailureDefaults or None), from @on_failure or @task(on_failure=...)."""
        handling = self._failure_handling
        if handling is None:
            declared = getattr(self, ON_FAILURE_ATTRIBUTE, None) or getattr(
                self.function, ON_FAILURE_ATTRIBUTE, None)
            policy, given = declared or (self.on_failure, self.options.get("defaults") or {})
            defaults = (FailureDefaults(given, self.parameters, self._where)
                        if policy is FailurePolicy.IGNORE else None)
            handling = self._failure_handling = (policy, defaults)
        return handling


class _BoundTask:
    __slots__ = ("task_function", "instance")

    def __init__(self, task_function: TaskFunction, instance):
        self.task_function = task_function
        self.instance = instance

    def __call__(self, *args, **kwargs):
        if in_worker():
            return self.task_function.function(self.instance, *args, **kwargs)
        return self.task_function.submit(args, kwargs, self.instance)


def _rebuild_task_function(function, options, runner=None):
    task_function = TaskFunction(function, options)
    task_function.runner = runner
    return task_function


_call_sites: dict = {}      # (file, line) -> "file:line", one string per call site
_MAX_CALL_SITES = 100_000


def _call_site() -> str:
    """Shared per call site: every future keeps it, and 10^6 calls from one line of a loop
    must not hold 10^6 copies of the same string."""
    frame = sys._getframe(1)
    here = __file__
    while frame is not None and frame.f_code.co_filename == here:
        frame = frame.f_back
    if frame is None:
        return "<unknown>"
    where = (frame.f_code.co_filename, frame.f_lineno)
    site = _call_sites.get(where)
    if site is None:
        site = f"{where[0]}:{where[1]}"
        if len(_call_sites) < _MAX_CALL_SITES:
            _call_sites[where] = site
    return site


def _source_of(function) -> str:
    code = getattr(function, "__code__", None)
    if code is None:
        return "<unknown>"
    return f"{code.co_filename}:{code.co_firstlineno}"


__all__ = ["task", "TaskFunction", "CallError"]
