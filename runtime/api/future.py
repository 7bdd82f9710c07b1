"""The placeholder a task call returns.

A Future stands for a datum (not a fixed version): if a later task updates it INOUT, waiting on
the future gives the newest value, as in PyCOMPSs. Using it as a value before compss_wait_on
raises at once and names the task, instead of silently computing with a placeholder.
"""
from __future__ import annotations

from .exceptions import FutureUsedBeforeSync


class Future:
    __slots__ = ("_datum_id", "_task_name", "_call_site", "_session", "__weakref__")

    def __init__(self, datum_id: int, task_name: str, call_site: str, session) -> None:
        object.__setattr__(self, "_datum_id", datum_id)
        object.__setattr__(self, "_task_name", task_name)
        object.__setattr__(self, "_call_site", call_site)
        object.__setattr__(self, "_session", session)

    @property
    def datum_id(self) -> int:
        return self._datum_id

    def _misuse(self, what: str):
        raise FutureUsedBeforeSync(
            f"{what} on the result of task '{self._task_name}' (called at {self._call_site}) "
            f"before synchronising it: use value = compss_wait_on(value) first")

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        self._misuse(f"attribute access .{name}")

    def __setattr__(self, name, value):
        self._misuse(f"setting attribute .{name}")

    def __bool__(self):
        self._misuse("truth test")

    def __len__(self):
        self._misuse("len()")

    def __iter__(self):
        self._misuse("iteration")

    def __getitem__(self, item):
        self._misuse("indexing")

    def __setitem__(self, item, value):
        self._misuse("item assignment")

    def __contains__(self, item):
        self._misuse("'in' test")

    def __index__(self):
        self._misuse("use as an integer")

    def __int__(self):
        self._misuse("int()")

    def __float__(self):
        self._misuse("float()")

    def __str__(self):
        return f"<Future of task '{self._task_name}' ({self._call_site}); not synchronised>"

    __repr__ = __str__

    def __reduce__(self):
        self._misuse("pickling it outside a task call")

    def __del__(self):
        session = self._session
        if session is not None and not session.stopped:
            session.forget_datum(self._datum_id)


def _arithmetic(name: str):
    def operator(self, *args):
        self._misuse(f"operator {name}")
    operator.__name__ = name
    return operator


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or",
              "xor", "lshift", "rshift", "radd", "rsub", "rmul", "rtruediv", "rfloordiv", "rmod",
              "rpow", "rmatmul", "neg", "pos", "abs", "lt", "le", "gt", "ge", "iadd", "isub",
              "imul", "itruediv"):
    setattr(Future, f"__{_name}__", _arithmetic(f"__{_name}__"))
