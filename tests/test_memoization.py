"""Memoization (@task(cache=True), runcompss --cache): a hit needs the same code and the same
data. Each cached task appends a line to a side file when its body really runs, so a test
counts executions independently of what the runtime reports."""
from __future__ import annotations

import os
import textwrap

from conftest import run_program

CACHED_PROGRAM = """
import json
import os
from pycompss.api.task import task
from pycompss.api.parameter import FILE_IN
from pycompss.api.api import compss_wait_on

def note(what):
    with open(os.environ["EXECUTIONS"], "a") as log:
        log.write(what + "\\n")

def helper(x):
    return x {helper_operator} 3

@task(returns=1, path=FILE_IN)
def load(path):
    with open(path) as handle:
        return int(handle.read())

@task(returns=1, cache=True)
def transform(x):
    note("transform")
    return {transform_body}

@task(returns=1, cache=True)
def combine(values, offset):
    note("combine")
    return sum(values) + offset

if __name__ == "__main__":
    data = load("input.txt")
    parts = [transform(i) for i in range(5)] + [transform(data)]
    print("RESULT", json.dumps(compss_wait_on(combine(parts, 1))))
"""


def write_program(tmp_path, transform_body="helper(x) * 2", helper_operator="+"):
    path = tmp_path / "memo.py"
    path.write_text(textwrap.dedent(CACHED_PROGRAM).format(
        transform_body=transform_body, helper_operator=helper_operator))
    return path


def executions(tmp_path) -> list:
    log = tmp_path / "executions.log"
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return sorted(lines)


def run_both(path, tmp_path, cache_dir):
    """runcompss, then the sequential reference on a separate cache: same answer."""
    os.environ["EXECUTIONS"] = str(tmp_path / "executions.log")
    os.environ["SUPERSCALAR_CACHE_DIR"] = str(tmp_path / "sequential-cache")
    try:
        distributed = run_program(path, extra=[f"--cache_dir={cache_dir}"], cwd=tmp_path)
        assert distributed.returncode == 0, distributed.stderr
        ran = executions(tmp_path)
        sequential = run_program(path, mode="python", cwd=tmp_path)
        assert sequential.returncode == 0, sequential.stderr
        executions(tmp_path)
    finally:
        del os.environ["EXECUTIONS"], os.environ["SUPERSCALAR_CACHE_DIR"]
    assert distributed.results == sequential.results
    return distributed, ran


def test_hits_and_misses_follow_code_and_data(tmp_path):
    cache = tmp_path / "cache"
    (tmp_path / "input.txt").write_text("40")
    path = write_program(tmp_path)

    first, ran = run_both(path, tmp_path, cache)
    assert ran == ["combine"] + ["transform"] * 6
    assert "cache: 0 hits, 7 misses" in first.stderr

    again, ran = run_both(path, tmp_path, cache)                  # nothing changed: all hits
    assert ran == [] and again.results == first.results
    assert "cache: 7 hits, 0 misses" in again.stderr

    # Changed input data: the task reading it and everything downstream miss.
    (tmp_path / "input.txt").write_text("41")
    changed, ran = run_both(path, tmp_path, cache)
    assert ran == ["combine", "transform"]
    assert changed.results != first.results

    # The same file name, the same function name, another body: a miss (Parsl would hit).
    path = write_program(tmp_path, transform_body="helper(x) * 5")
    edited, ran = run_both(path, tmp_path, cache)
    assert ran == ["combine"] + ["transform"] * 6
    assert edited.results != changed.results

    # Only a helper the task calls changed: still a miss.
    path = write_program(tmp_path, transform_body="helper(x) * 5", helper_operator="-")
    helper_edited, ran = run_both(path, tmp_path, cache)
    assert ran == ["combine"] + ["transform"] * 6
    assert helper_edited.results != edited.results

    # Back to a version seen before: served from the cache again.
    path = write_program(tmp_path, transform_body="helper(x) * 5")
    back, ran = run_both(path, tmp_path, cache)
    assert ran == [] and back.results == edited.results


def test_cache_flag_memoizes_every_task_and_sequential_mode_shares_keys(program, tmp_path):
    path = program("""
        import json
        import os
        from pycompss.api.task import task
        from pycompss.api.api import compss_wait_on

        @task(returns=1)
        def square(x):
            with open(os.environ["EXECUTIONS"], "a") as log:
                log.write("square\\n")
            return x * x

        if __name__ == "__main__":
            print("RESULT", json.dumps(compss_wait_on([square(i) for i in range(8)])))
    """)
    os.environ["EXECUTIONS"] = str(tmp_path / "executions.log")
    os.environ["SUPERSCALAR_CACHE_DIR"] = str(tmp_path / "cache")
    try:
        first = run_program(path, extra=["--cache"])
        assert first.returncode == 0, first.stderr
        assert len(executions(tmp_path)) == 8
        plain = run_program(path, extra=["--no_journal"])       # no cache: runs again
        assert plain.returncode == 0, plain.stderr
        assert len(executions(tmp_path)) == 8
        sequential = run_program(path, mode="python")            # no cache=True: runs
        assert len(executions(tmp_path)) == 8
        second = run_program(path, extra=["--cache", "--no_journal"])
        assert second.returncode == 0, second.stderr
        assert executions(tmp_path) == []
    finally:
        del os.environ["EXECUTIONS"], os.environ["SUPERSCALAR_CACHE_DIR"]
    assert first.results == plain.results == sequential.results == second.results
    assert "cache: 8 hits, 0 misses" in second.stderr
