"""What a worker runs instead of the body of a @binary, @mpi, @container or @prolog/@epilog task.

    @binary(...)/@mpi(...)/@container(...)   (runtime.api, at decoration time)
          │  a runner object: picklable, it holds copies of the decorator fields and of each
          │  parameter's spec; set as TaskFunction.runner and shipped like a function
          ▼
    run_task (worker or `python app.py`) calls runner(*args, **kwargs), FILE values already
    sandbox paths ──► argv (command_line, mpi_launch) ──► subprocess in the task's sandbox
          ▲                                                 stdout/stderr: the job's output,
          └──── exit value (an int) / per-rank results ◄─── unless redirected to a FILE

A runner never has an attribute named `function` (the executor would unwrap it).
"""
from __future__ import annotations

import ctypes
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass

from ..core.context import in_worker
from .command_line import (CommandError, Redirections, bind_arguments, exit_value,
                           expand_arguments, parameter_arguments, redirections_of,
                           resolve_flag, substitute, values_by_name)
from .worker_context import current_assignment

__all__ = ["CommandError", "Call", "CommandRunner", "BinaryRunner", "ContainerSpec", "StageSpec",
           "StagedRunner", "run_process", "resolve_program", "TaskDirectory"]


# ---- processes -----------------------------------------------------------------------------
def run_process(argv: list, redirections: Redirections, cwd: str, environment: dict,
                where: str) -> int:
    """Run one command to its end; its output not redirected goes to this process's fd 1/2
    (the task's job output on a worker). Returns the exit value (128+N if killed by signal N)."""
    sys.stdout.flush()
    sys.stderr.flush()
    handles = []
    try:
        stdin = _open(redirections.stdin, "rb", handles, where) if redirections.stdin else (
            subprocess.DEVNULL)
        stdout = _open(redirections.stdout, "ab" if redirections.append_stdout else "wb",
                       handles, where) if redirections.stdout else None
        stderr = _open(redirections.stderr, "ab" if redirections.append_stderr else "wb",
                       handles, where) if redirections.stderr else None
        try:
            process = subprocess.Popen(argv, cwd=cwd, env=environment, stdin=stdin,
                                       stdout=stdout, stderr=stderr,
                                       preexec_fn=_end_with_parent_hook())
        except FileNotFoundError:
            raise CommandError(f"{where}: '{argv[0]}' not found on host "
                               f"{socket.gethostname()}") from None
        except PermissionError:
            raise CommandError(f"{where}: '{argv[0]}' is not executable on host "
                               f"{socket.gethostname()}") from None
        try:
            return exit_value(process.wait())
        except BaseException:
            process.terminate()
            process.wait()
            raise
    finally:
        for handle in handles:
            handle.close()


def _open(path: str, mode: str, handles: list, where: str):
    try:
        handle = open(path, mode)
    except OSError as error:
        raise CommandError(f"{where}: cannot open {path} for redirection: {error}") from None
    handles.append(handle)
    return handle


def _end_with_parent_hook():
    """Before exec, in the child: a killed executor (time-out, cancel) takes its command with
    it (SIGTERM: mpirun then stops its ranks). Only where a fork hook is safe: a worker's
    single-threaded executor, not an application with threads of its own."""
    if not in_worker() or threading.active_count() != 1 or not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl     # looked up before the fork
    except (OSError, AttributeError):
        return None

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
    return hook


_PR_SET_PDEATHSIG = 1


def resolve_program(program: str, origin_dir: str, cwd: str, environment: dict,
                    where: str) -> str:
    """A bare name is looked up on PATH; a relative path is taken from the application's
    directory (where it was decorated) if it is there, else from the working directory."""
    if os.sep not in program:
        found = shutil.which(program, path=environment.get("PATH", os.defpath))
        if found is None:
            raise CommandError(f"{where}: binary '{program}' not found on host "
                               f"{socket.gethostname()} (PATH={environment.get('PATH', '')})")
        return found
    candidates = [program] if os.path.isabs(program) else [
        os.path.normpath(os.path.join(origin_dir, program)),
        os.path.normpath(os.path.join(cwd, program))]
    for candidate in candidates:
        if os.path.isfile(candidate):
            if not os.access(candidate, os.X_OK):
                raise CommandError(f"{where}: binary '{candidate}' is not executable")
            return os.path.abspath(candidate)
    raise CommandError(f"{where}: binary '{program}' not found on host {socket.gethostname()} "
                       f"(looked at {', '.join(candidates)})")


def working_directory(template: str | None, values: dict, origin_dir: str, sandbox: str,
                      where: str) -> str:
    """The task's sandbox, or `working_dir` (created if missing; relative to the application's
    directory), as COMPSs does."""
    if not template:
        return sandbox
    directory = substitute(template, values, where)
    if not os.path.isabs(directory):
        directory = os.path.join(origin_dir, directory)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as error:
        raise CommandError(f"{where}: cannot create working_dir {directory}: {error}") from None
    return directory


class TaskDirectory:
    """The task's sandbox as working directory: created if the task staged no file, and then
    removed again afterwards (run_task only removes sandboxes it staged files into)."""

    def __init__(self) -> None:
        self.path = current_assignment().sandbox
        self._created = False

    def __enter__(self) -> str:
        if not self.path:
            self.path = tempfile.mkdtemp(prefix="superscalar-command-")
            self._created = True
        elif not os.path.isdir(self.path):
            os.makedirs(self.path)
            self._created = True
        return self.path

    def __exit__(self, *_) -> None:
        if self._created:
            shutil.rmtree(self.path, ignore_errors=True)


# ---- containers -----------------------------------------------------------------------------
ENGINES = ("docker", "singularity", "apptainer")


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    engine: str                 # docker | singularity | apptainer
    image: str
    options: str = ""

    def arguments(self, values: dict, mounts: list, workdir: str, environment: dict,
                  where: str, passed: dict | None = None) -> list[str]:
        """The engine invocation up to the image; the program and its arguments follow.
        `passed`: environment variables set inside the container."""
        engine = shutil.which(self.engine, path=environment.get("PATH", os.defpath))
        if engine is None:
            raise CommandError(f"{where}: container engine '{self.engine}' is not installed on "
                               f"host {socket.gethostname()} (not on PATH); the task needs it "
                               f"to run in image '{substitute(self.image, values, where)}'")
        options = shlex.split(substitute(self.options, values, where)) if self.options else []
        image = substitute(self.image, values, where)
        unique = list(dict.fromkeys(os.path.abspath(path) for path in mounts if path))
        passed = passed or {}
        if self.engine == "docker":
            arguments = [engine, "run", "-i", "--rm"]
            if hasattr(os, "geteuid") and os.geteuid() != 0:
                arguments += ["--user", f"{os.geteuid()}:{os.getegid()}"]
            for path in unique:
                arguments += ["-v", f"{path}:{path}"]
            arguments += ["-w", workdir]
            for name, value in passed.items():
                arguments += ["-e", f"{name}={value}"]
            return arguments + options + [image]
        arguments = [engine, "exec"]
        for path in unique:
            arguments += ["--bind", path]
        arguments += ["--pwd", workdir]
        for name, value in passed.items():
            arguments += ["--env", f"{name}={value}"]
        return arguments + options + [image]


# ---- what every runner shares --------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Call:
    """One call of a runner, its arguments bound to the function's parameters."""

    args: tuple
    kwargs: dict
    named: list                 # [NamedValue], parameter order
    values: dict                # {parameter: value}, for {{param}}
    sandbox: str
    where: str                  # the task, as errors name it


class CommandRunner:
    """The call every runner makes: bind the arguments, open the task's sandbox, `run` in it.
    Subclasses hold plain attributes only, so cloudpickle ships them to the workers."""

    kind = "@task"

    def __init__(self, name: str, where: str, slots: tuple, origin_dir: str = "",
                 container: ContainerSpec | None = None):
        self.name = name
        self.where = where
        self.slots = slots
        self.origin_dir = origin_dir
        self.container = container

    def describe(self) -> str:
        return f"{self.where}: {self.kind} task '{self.name}'"

    def adjust_requirements(self, requirements, arguments: dict):
        return requirements

    def __call__(self, *args, **kwargs):
        where = self.describe()
        named = bind_arguments(self.slots, args, kwargs)
        with TaskDirectory() as sandbox:
            return self.run(Call(args, kwargs, named, values_by_name(named), sandbox, where))

    def run(self, call: Call):
        raise NotImplementedError

    def execute(self, program: list, call: Call, cwd: str, environment: dict) -> tuple[int, list]:
        """Runs `program` to its end; (exit value, the whole argv)."""
        argv = self.full_argv(program, call, cwd, environment)
        code = run_process(argv, redirections_of(call.named, call.where), cwd, environment,
                           call.where)
        return code, argv

    def full_argv(self, program: list, call: Call, cwd: str, environment: dict) -> list:
        """`program` as it runs: in the container, if any (a launcher may go in front)."""
        if self.container is None:
            return list(program)
        mounts = [call.sandbox, cwd, *self.container_mounts()]
        return self.container.arguments(call.values, mounts, cwd, environment, call.where,
                                        self.container_environment(environment)) + program

    def container_environment(self, environment: dict) -> dict:
        """The variables set inside the container."""
        return {}

    def container_mounts(self) -> tuple:
        """Directories mounted besides the sandbox and the working directory."""
        return ()


# ---- @binary ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CommandFields:
    """The decorator's string fields, kept as written ({{param}} and $VAR resolved per call)."""

    binary: str
    args: str | None = None
    working_dir: str | None = None
    fail_by_exit_value: object = False


class BinaryRunner(CommandRunner):
    """@binary: the function's parameters (or `args`) become the binary's command line."""

    kind = "@binary"

    def __init__(self, name: str, where: str, slots: tuple, fields: CommandFields,
                 origin_dir: str, container: ContainerSpec | None = None):
        super().__init__(name, where, slots, origin_dir, container)
        self.fields = fields

    def run(self, call: Call) -> int:
        cwd = working_directory(self.fields.working_dir, call.values, self.origin_dir,
                                call.sandbox, call.where)
        environment = dict(os.environ)
        code, argv = self.execute(self._command(call, cwd, environment), call, cwd, environment)
        if code != 0 and resolve_flag(self.fields.fail_by_exit_value, call.where,
                                      "fail_by_exit_value"):
            raise CommandError(f"{call.where}: command exited with value {code} "
                               f"(fail_by_exit_value): {shlex.join(argv)}")
        return code

    def _command(self, call: Call, cwd: str, environment: dict) -> list[str]:
        """The program (looked up here unless it lives in the image) and its arguments."""
        program = substitute(self.fields.binary, call.values, call.where)
        if self.container is None:
            program = resolve_program(program, self.origin_dir, cwd, environment, call.where)
        if self.fields.args is not None:
            return [program, *expand_arguments(self.fields.args, call.named, call.where)]
        return [program, *parameter_arguments(call.named)]


# ---- @prolog / @epilog ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StageSpec:
    """A command run in the task's sandbox before (prolog) or after (epilog) the task."""

    binary: str
    args: str | None = None
    fail_by_exit_value: object = True


class StagedRunner(CommandRunner):
    """Runs the prolog, the task (its body or an inner runner), then the epilog."""

    kind = "@prolog/@epilog"

    def __init__(self, name: str, where: str, slots: tuple, origin_dir: str, body,
                 prolog: StageSpec | None, epilog: StageSpec | None):
        super().__init__(name, where, slots, origin_dir)
        self.body = body
        self.prolog = prolog
        self.epilog = epilog

    def adjust_requirements(self, requirements, arguments: dict):
        inner = getattr(self.body, "adjust_requirements", None)
        return inner(requirements, arguments) if inner is not None else requirements

    def run(self, call: Call):
        if self.prolog is not None:
            self._stage("@prolog", self.prolog, call)
        result = self.body(*call.args, **call.kwargs)
        if self.epilog is not None:
            self._stage("@epilog", self.epilog, call)
        return result

    def _stage(self, kind: str, stage: StageSpec, call: Call) -> None:
        where = f"{self.where}: {kind} of task '{self.name}'"
        environment = dict(os.environ)
        program = resolve_program(substitute(stage.binary, call.values, where), self.origin_dir,
                                  call.sandbox, environment, where)
        arguments = expand_arguments(stage.args, call.named, where) if stage.args else []
        argv = [program, *arguments]
        code = run_process(argv, Redirections(), call.sandbox, environment, where)
        if code != 0 and resolve_flag(stage.fail_by_exit_value, where, "fail_by_exit_value"):
            raise CommandError(f"{where}: exited with value {code}: {shlex.join(argv)}")
