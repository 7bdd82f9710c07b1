"""@container: no container engine runs on these machines, so the command line the runtime
builds is checked (docker / singularity / apptainer), and a missing engine must fail the task
with a clear message. End to end, a stand-in `singularity` that only records its arguments
shows what a worker really launches (and, under @mpi, that mpirun launches the engine)."""
import os
import shutil
import stat

import pytest

from conftest import run_program
from helpers_api import api_program, describe, named
from runtime.worker.command_line import CommandError
from runtime.worker.commands import ContainerSpec

pytestmark = pytest.mark.timeout(300)


def _executables(folder, *names, body="exit 0"):
    folder.mkdir(exist_ok=True)
    for name in names:
        path = folder / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return folder


@pytest.mark.parametrize("engine", ["docker", "singularity", "apptainer"])
def test_engine_command_lines(tmp_path, engine):
    folder = _executables(tmp_path / "bin", engine)
    spec = ContainerSpec(engine, "registry/{{name}}:1", "--cleanenv {{extra}}")
    values = {"name": "tool", "extra": "-q"}
    arguments = spec.arguments(values, ["/sandbox/job1", "/work", "/sandbox/job1"], "/work",
                               {"PATH": str(folder)}, "t", {"OMP_NUM_THREADS": "2"})
    executable = str(folder / engine)
    if engine == "docker":
        user = [] if os.geteuid() == 0 else ["--user", f"{os.geteuid()}:{os.getegid()}"]
        assert arguments == [executable, "run", "-i", "--rm", *user,
                             "-v", "/sandbox/job1:/sandbox/job1", "-v", "/work:/work",
                             "-w", "/work", "-e", "OMP_NUM_THREADS=2",
                             "--cleanenv", "-q", "registry/tool:1"]
    else:
        assert arguments == [executable, "exec", "--bind", "/sandbox/job1", "--bind", "/work",
                             "--pwd", "/work", "--env", "OMP_NUM_THREADS=2",
                             "--cleanenv", "-q", "registry/tool:1"]


def test_missing_engine_is_named_with_the_host(tmp_path):
    spec = ContainerSpec("apptainer", "image.sif")
    with pytest.raises(CommandError) as error:
        spec.arguments({}, [], "/w", {"PATH": str(tmp_path)}, "app.py:3: @container task 'f'")
    message = str(error.value)
    assert "app.py:3: @container task 'f'" in message
    assert "container engine 'apptainer' is not installed on host" in message
    assert "image.sif" in message


def test_missing_engine_fails_the_task_in_both_modes(program, tmp_path, monkeypatch):
    if shutil.which("apptainer"):
        pytest.skip("apptainer is installed here")
    path = api_program(program, """
        from pycompss.api.binary import binary
        from pycompss.api.container import container


        @container(engine="APPTAINER", image="docker://debian:12")
        @binary(binary="echo")
        @task(returns=int)
        def in_container(word):
            pass


        @container(engine="APPTAINER", image="python.sif")
        @task(returns=1)
        def python_in_container(x):
            return x + 1


        if __name__ == "__main__":
            for call in (lambda: in_container("hi"), lambda: python_in_container(1)):
                try:
                    compss_wait_on(call())
                    report("error", None)
                except Exception as error:
                    report("error", describe_error(error))
    """)
    for mode in ("python", "runcompss"):
        run = run_program(path, mode=mode, cwd=tmp_path)
        if mode == "runcompss":
            assert run.returncode == 1, describe(run)     # a task failed
        errors = [item[1] for item in run.results]
        assert [e[0] for e in errors] == ["CommandError", "CommandError"], describe(run)
        assert "task 'in_container'" in errors[0][1]
        assert "container engine 'apptainer' is not installed" in errors[0][1]
        assert "task 'python_in_container'" in errors[1][1]


def test_binary_and_mpi_tasks_launch_the_engine(program, tmp_path, monkeypatch):
    record = tmp_path / "engine-calls.txt"
    # a stand-in engine: records its arguments (one call per line, tab-separated, in a single
    # append: the MPI ranks call it at the same time), runs nothing
    folder = _executables(tmp_path / "bin", "singularity",
                          body='line=$(printf "%s\\t" "$@"); printf "%s\\n" "$line" >> "$ENGINE_RECORD"')
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("ENGINE_RECORD", str(record))
    path = api_program(program, """
        from pycompss.api.binary import binary
        from pycompss.api.container import container
        from pycompss.api.mpi import mpi


        @container(engine="SINGULARITY", image="library/{{image}}")
        @binary(binary="grep", args="-c {{word}} {{source}}")
        @task(source=FILE_IN, returns=int)
        def count(image, word, source):
            pass


        @container(engine="singularity", image="solver.sif", options="--cleanenv")
        @mpi(binary="/opt/app/solver", processes=2, args="{{n}}")
        @task(returns=int)
        def solve(n):
            pass


        if __name__ == "__main__":
            folder = sys.argv[1]
            source = os.path.join(folder, "in.txt")
            with open(source, "w") as handle:
                handle.write("Hi\\n")
            report("count", compss_wait_on(count("debian", "Hi", source)))
            report("solve", compss_wait_on(solve(5)))
    """)
    for mode in ("python", "runcompss"):
        record.write_text("")
        (tmp_path / mode).mkdir()
        run = run_program(path, mode=mode, args=[tmp_path / mode], cwd=tmp_path)
        assert run.returncode == 0, describe(run)
        assert named(run) == {"count": 0, "solve": 0}
        calls = [line.rstrip("\t").split("\t") for line in record.read_text().splitlines()]
        grep_call, solver_calls = calls[0], calls[1:]
        assert grep_call[:2] == ["exec", "--bind"]
        sandbox = grep_call[2]
        assert grep_call[3:5] == ["--pwd", sandbox]
        assert grep_call[5:9] == ["library/debian", "grep", "-c", "Hi"]
        assert os.path.dirname(grep_call[9]) == sandbox      # the staged FILE_IN, bound
        # mpirun started the engine once per process, the program inside the image
        assert len(solver_calls) == 2
        for call in solver_calls:
            assert call[0] == "exec" and "--pwd" in call and "--cleanenv" in call
            assert call[-3:] == ["solver.sif", "/opt/app/solver", "5"]
            assert "OMP_NUM_THREADS=1" in call
