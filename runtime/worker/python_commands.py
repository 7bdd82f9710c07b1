"""Python task bodies run in other processes: on every rank of a Python @mpi task (mpi4py),
or inside a container (@container on a plain @task).

    runner(*args) ──► DIR/call.pkl (body, args, kwargs, layouts) in the sandbox
                  ──► [mpirun ...] [container ...] python -m runtime.worker.python_entry DIR
                  ◄── DIR/results.pkl: [result per rank] (MPI) or the result (container)
                  ◄── DIR/rankN.error: raised here as a CommandError naming the rank

Python MPI tasks return the list of the ranks' results (PyCOMPSs): with returns=1 the future is
that list; with returns=N (N = number of processes) each future is one rank's result.
"""
from __future__ import annotations

import importlib.util
import os
import pickle
import shutil
import sys
import tempfile

import cloudpickle

from .command_line import CommandError, bind_arguments, redirections_of, values_by_name
from .commands import ContainerSpec, TaskDirectory, run_process, working_directory
from .mpi_commands import MpiFields, MpiLaunch

_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_ENTRY = ["-m", "runtime.worker.python_entry"]


class PythonMpiRunner(MpiLaunch):
    """@mpi without binary: the function body on every rank; returns [result per rank]."""

    kind = "@mpi"

    def __init__(self, name: str, where: str, slots: tuple, body, working_dir: str | None,
                 mpi: MpiFields, origin_dir: str, container: ContainerSpec | None = None):
        self.name = name
        self.where = where
        self.slots = slots
        self.body = body
        self.working_dir = working_dir
        self.mpi = mpi
        self.origin_dir = origin_dir
        self.container = container

    def describe(self) -> str:
        return f"{self.where}: @mpi task '{self.name}' (Python, mpi4py)"

    def __call__(self, *args, **kwargs):
        where = self.describe()
        require_mpi4py(where)
        named = bind_arguments(self.slots, args, kwargs)
        values = values_by_name(named)
        with TaskDirectory() as sandbox:
            exchange = tempfile.mkdtemp(prefix="python_mpi_", dir=sandbox)
            try:
                cwd = working_directory(self.working_dir, values, self.origin_dir, sandbox, where)
                call = (self.body, args, kwargs, self._layout_targets(named, args, kwargs))
                dump_call(exchange, call, where)
                environment = dict(os.environ, PYTHONPATH=python_path())
                python = "python3" if self.container is not None else sys.executable
                program = [python, *_ENTRY, "--mpi", exchange]
                code, argv = self.launch(program, values, named, cwd, sandbox, environment,
                                         where)
                return collect_results(exchange, code, where, argv)
            finally:
                shutil.rmtree(exchange, ignore_errors=True)

    def container_environment(self, environment: dict) -> dict:
        """In an image the ranks run its python3 with the runtime's package mounted."""
        return {"OMP_NUM_THREADS": environment["OMP_NUM_THREADS"], "PYTHONPATH": _PACKAGE_ROOT}

    def container_mounts(self) -> tuple:
        return (_PACKAGE_ROOT,)

    def _layout_targets(self, named: list, args: tuple, kwargs: dict) -> list:
        """[(("arg", index) | ("kwarg", name), (block_count, block_length, stride))]"""
        positions = {}
        for index, item in enumerate(named[:len(args)]):
            positions.setdefault(item.name, ("arg", index))
        targets = []
        for name, layout in self.mpi.layouts:
            target = positions.get(name) or (("kwarg", name) if name in kwargs else None)
            if target is not None:
                targets.append((target, layout))
        return targets


class ContainerPythonRunner:
    """@container on a plain @task: the body runs in the image, in the task's sandbox, with the
    runtime's package mounted (the image needs python3 with cloudpickle)."""

    kind = "@container"

    def __init__(self, name: str, where: str, slots: tuple, body, container: ContainerSpec,
                 python: str = "python3"):
        self.name = name
        self.where = where
        self.slots = slots
        self.body = body
        self.container = container
        self.python = python

    def describe(self) -> str:
        return f"{self.where}: @container task '{self.name}'"

    def adjust_requirements(self, requirements, arguments: dict):
        return requirements

    def __call__(self, *args, **kwargs):
        where = self.describe()
        named = bind_arguments(self.slots, args, kwargs)
        values = values_by_name(named)
        with TaskDirectory() as sandbox:
            exchange = tempfile.mkdtemp(prefix="container_", dir=sandbox)
            try:
                dump_call(exchange, (self.body, args, kwargs, []), where)
                environment = dict(os.environ, PYTHONPATH=_PACKAGE_ROOT)
                argv = self.container.arguments(values, [sandbox, _PACKAGE_ROOT], sandbox,
                                                environment, where,
                                                {"PYTHONPATH": _PACKAGE_ROOT})
                argv += [self.python, *_ENTRY, exchange]
                code = run_process(argv, redirections_of(named, where), sandbox, environment,
                                   where)
                return collect_results(exchange, code, where, argv)
            finally:
                shutil.rmtree(exchange, ignore_errors=True)


# ---- helpers ---------------------------------------------------------------------------------
def require_mpi4py(where: str) -> None:
    if importlib.util.find_spec("mpi4py") is None:
        raise CommandError(f"{where}: a Python MPI task needs mpi4py on host where it runs "
                           f"(pip install mpi4py, or the 'mpi' extra of superscalar)")


def python_path() -> str:
    """The rank processes import the runtime and the application as this process does."""
    paths = [_PACKAGE_ROOT, *os.environ.get("PYTHONPATH", "").split(os.pathsep), *sys.path]
    return os.pathsep.join(dict.fromkeys(p for p in paths if p and os.path.isdir(p)))


def dump_call(directory: str, value, where: str) -> None:
    try:
        data = cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as error:
        raise CommandError(f"{where}: cannot serialize the task's body and arguments for the "
                           f"ranks: {type(error).__name__}: {error}") from None
    with open(os.path.join(directory, "call.pkl"), "wb") as handle:
        handle.write(data)


def collect_results(exchange: str, code: int, where: str, argv: list):
    """The gathered results, or the first failing rank's error with its traceback."""
    failures = sorted(name for name in os.listdir(exchange) if name.endswith(".error"))
    if failures:
        with open(os.path.join(exchange, failures[0]), "rb") as handle:
            rank, type_name, message, traceback_text = pickle.load(handle)
        raise CommandError(f"{where}: rank {rank} raised {type_name}: {message}\n"
                           f"--- traceback on rank {rank} ---\n{traceback_text}")
    results = os.path.join(exchange, "results.pkl")
    if code != 0 or not os.path.exists(results):
        raise CommandError(f"{where}: the MPI launcher exited with value {code} and no result "
                           f"(see the job's error output): {' '.join(argv)}")
    with open(results, "rb") as handle:
        return cloudpickle.load(handle)


__all__ = ["PythonMpiRunner", "ContainerPythonRunner", "python_path", "collect_results"]
