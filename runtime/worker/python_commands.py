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

import contextlib
import importlib.util
import os
import pickle
import shutil
import sys
import tempfile

import cloudpickle

from .command_line import CommandError
from .commands import Call, CommandRunner, ContainerSpec, working_directory
from .mpi_commands import MpiFields, MpiLaunch

_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_ENTRY = ["-m", "runtime.worker.python_entry"]


class PythonMpiRunner(MpiLaunch):
    """@mpi without binary: the function body on every rank; returns [result per rank]."""

    kind = "@mpi"

    def __init__(self, name: str, where: str, slots: tuple, body, working_dir: str | None,
                 mpi: MpiFields, origin_dir: str, container: ContainerSpec | None = None):
        super().__init__(name, where, slots, origin_dir, container)
        self.body = body
        self.working_dir = working_dir
        self.mpi = mpi

    def describe(self) -> str:
        return f"{self.where}: @mpi task '{self.name}' (Python, mpi4py)"

    def __call__(self, *args, **kwargs):
        require_mpi4py(self.describe())
        return super().__call__(*args, **kwargs)

    def run(self, call: Call):
        with exchange_directory("python_mpi_", call.sandbox) as exchange:
            cwd = working_directory(self.working_dir, call.values, self.origin_dir, call.sandbox,
                                    call.where)
            layouts = self._layout_targets(call.named, call.args, call.kwargs)
            dump_call(exchange, (self.body, call.args, call.kwargs, layouts), call.where)
            environment = dict(os.environ, PYTHONPATH=python_path())
            python = "python3" if self.container is not None else sys.executable
            code, argv = self.execute([python, *_ENTRY, "--mpi", exchange], call, cwd,
                                      environment)
            return collect_results(exchange, code, call.where, argv)

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


class ContainerPythonRunner(CommandRunner):
    """@container on a plain @task: the body runs in the image, in the task's sandbox, with the
    runtime's package mounted (the image needs python3 with cloudpickle)."""

    kind = "@container"

    def __init__(self, name: str, where: str, slots: tuple, body, container: ContainerSpec,
                 python: str = "python3"):
        super().__init__(name, where, slots, container=container)
        self.body = body
        self.python = python

    def run(self, call: Call):
        with exchange_directory("container_", call.sandbox) as exchange:
            dump_call(exchange, (self.body, call.args, call.kwargs, []), call.where)
            environment = dict(os.environ, PYTHONPATH=_PACKAGE_ROOT)
            code, argv = self.execute([self.python, *_ENTRY, exchange], call, call.sandbox,
                                      environment)
            return collect_results(exchange, code, call.where, argv)

    def container_environment(self, environment: dict) -> dict:
        return {"PYTHONPATH": _PACKAGE_ROOT}

    def container_mounts(self) -> tuple:
        return (_PACKAGE_ROOT,)


# ---- helpers ---------------------------------------------------------------------------------
@contextlib.contextmanager
def exchange_directory(prefix: str, sandbox: str):
    """Where the call and the results pass between this process and the body's processes."""
    exchange = tempfile.mkdtemp(prefix=prefix, dir=sandbox)
    try:
        yield exchange
    finally:
        shutil.rmtree(exchange, ignore_errors=True)


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
