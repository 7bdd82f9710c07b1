"""Bad input: each case gives a clear error naming the user's thing, and never hangs."""
import re

from conftest import run_program

HEADER = """
import json, threading
from pycompss.api.task import task
from pycompss.api.parameter import *
from pycompss.api.constraint import constraint
from pycompss.api.api import compss_wait_on
"""


def line_of(path, text: str) -> int:
    return path.read_text().splitlines().index(text) + 1


def test_malformed_resources_xml_names_file_and_line(program, tmp_path):
    bad = tmp_path / "resources.xml"
    bad.write_text("<ResourcesList>\n  <ComputeNode Name='a'>\n    <Processor>\n</ResourcesList>\n")
    path = program(HEADER + "print('never runs')\n")
    run = run_program(path, resources=bad, timeout=30)
    assert run.returncode != 0
    assert str(bad) in run.stderr and re.search(r"resources\.xml:\d+", run.stderr), run.stderr
    assert "never runs" not in run.stdout


def test_unknown_element_in_resources_is_named(program, tmp_path):
    bad = tmp_path / "resources.xml"
    bad.write_text("<ResourcesList>\n <ComputeNode Name='a'>\n  <Processor Name='p'>"
                   "<ComputingUnits>1</ComputingUnits></Processor>\n  <Memroy/>\n"
                   " </ComputeNode>\n</ResourcesList>\n")
    run = run_program(program(HEADER), resources=bad, timeout=30)
    assert run.returncode != 0
    assert f"{bad}:4" in run.stderr and "Memroy" in run.stderr, run.stderr


def test_unknown_direction_is_refused_at_decoration(program):
    path = program(HEADER + """
@task(x="SIDEWAYS")
def f(x):
    return x
""")
    for mode in ("python", "runcompss"):
        run = run_program(path, mode=mode, timeout=30)
        assert run.returncode != 0
        assert "unknown direction 'SIDEWAYS'" in run.stderr and "parameter 'x'" in run.stderr
        assert f"{path.name}:" in run.stderr, run.stderr


def test_option_naming_no_parameter_is_refused(program):
    path = program(HEADER + """
@task(returns=1, y=INOUT)
def f(x):
    return x
""")
    run = run_program(path, mode="runcompss", timeout=30)
    assert run.returncode != 0 and "'y' is neither a parameter" in run.stderr, run.stderr


def test_missing_file_in_names_call_site_task_and_parameter(program):
    path = program(HEADER + """
@task(returns=1, src=FILE_IN)
def size(src):
    return 0

size("/nonexistent/input.txt")
""")
    line = line_of(path, 'size("/nonexistent/input.txt")')
    for mode in ("python", "runcompss"):
        run = run_program(path, mode=mode, timeout=30)
        assert run.returncode != 0
        assert (f"{path.name}:{line}: @task 'size': parameter 'src' is FILE_IN but "
                f"/nonexistent/input.txt does not exist") in run.stderr, run.stderr


def test_file_parameter_given_a_non_path(program):
    path = program(HEADER + """
import numpy as np
@task(out=FILE_OUT)
def write(out):
    pass

write(np.zeros(3))
""")
    run = run_program(path, timeout=30)
    assert run.returncode != 0
    assert "parameter 'out' is FILE_OUT but got ndarray; pass a path string" in run.stderr


def test_unpicklable_argument_names_task_and_parameter(program):
    path = program(HEADER + """
@task(returns=1)
def use(lock, n):
    return n

use(threading.Lock(), 3)
""")
    for mode in ("python", "runcompss"):
        run = run_program(path, mode=mode, timeout=30)
        assert run.returncode != 0
        assert "@task 'use': parameter 'lock' cannot be serialized" in run.stderr, run.stderr
        assert "lock" in run.stderr


def test_wrong_arity_names_call_site(program):
    path = program(HEADER + """
@task(returns=1)
def add(a, b):
    return a + b

add(1)
""")
    run = run_program(path, timeout=30)
    assert run.returncode != 0
    assert f"{path.name}:{line_of(path, 'add(1)')}: @task 'add': missing a required argument: 'b'" in run.stderr


def test_unsatisfiable_constraint_fails_at_once_naming_it(program):
    path = program(HEADER + """
@constraint(computing_units=64, memory_size=4)
@task(returns=1)
def huge(x):
    return x

try:
    compss_wait_on(huge(1))
except Exception as error:
    print("RESULT", json.dumps(str(error)))
""")
    run = run_program(path, timeout=60)
    message = run.result
    assert "computing_units=64" in message and "can never be met" in message
    assert "largest resource" in message and "computing_units=2" in message
    assert run.returncode != 0


def test_unpicklable_return_value_names_the_task(program):
    path = program(HEADER + """
@task(returns=1)
def make_lock():
    return threading.Lock()

try:
    compss_wait_on(make_lock())
except Exception as error:
    print("RESULT", json.dumps(f"{type(error).__name__}: {error}"))
""")
    run = run_program(path, timeout=60)
    assert "cannot serialize lock" in run.result, run.result
    assert "make_lock" in run.stderr
    assert run.returncode != 0


def test_future_misuse_names_the_task(program):
    path = program(HEADER + """
@task(returns=1)
def one():
    return 1

try:
    one() + 1
except Exception as error:
    print("RESULT", json.dumps(f"{type(error).__name__}: {error}"))
""")
    run = run_program(path, timeout=60)
    assert run.result.startswith("FutureUsedBeforeSync: operator __add__ on the result of task "
                                 "'one'"), run.result
    assert "compss_wait_on" in run.result


def test_unimplemented_compss_flag_is_refused(program):
    run = run_program(program(HEADER), extra=["--tracing"], timeout=30)
    assert run.returncode != 0 and "not implemented yet" in run.stderr


def test_missing_application_file(tmp_path):
    run = run_program(tmp_path / "absent.py", timeout=30)
    assert run.returncode != 0 and "absent.py not found" in run.stderr
