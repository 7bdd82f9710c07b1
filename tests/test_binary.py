"""@binary tasks run real programs (printf, grep, sort, sh) under runcompss and sequentially
(`python prog.py` runs them too, in-process); the command lines they build are observed through
printf, which prints its arguments one per line, and checked against what COMPSs builds."""
import shutil
import time

import pytest

from conftest import TWO_NODES, run_program
from helpers_api import api_program, describe, named, run_both, same_in_fresh_folders

pytestmark = pytest.mark.timeout(300)

BINARY_TASKS = """
from pycompss.api.binary import binary


@binary(binary="printf")
@task(out=FILE_OUT_STDOUT, returns=int,
      glued={Prefix: "--name="}, split={Prefix: "-n "}, listed={Prefix: "-v"},
      hidden={Prefix: "#"}, source={Type: FILE_IN, Prefix: "--in="})
def show_arguments(fmt, glued, split, listed, hidden, flag, nothing, source, out):
    pass


@binary(binary="grep")
@task(infile=FILE_IN_STDIN, result=FILE_OUT_STDOUT, returns=int)
def grepper(keyword, infile, result):
    pass


@binary(binary="sort")
@task(source=FILE_IN_STDIN, target=FILE_OUT_STDOUT)
def sort_file(options, source, target):
    pass


@binary(binary="sh", args="-c {{script}}")
@task(returns=int)
def shell(script):
    pass


@binary(binary="sh", args="-c {{script}}", fail_by_exit_value=True)
@task(returns=int)
def strict_shell(script):
    pass


@binary(binary="sh", args="-c {{script}}")
@task(log=FILE_INOUT_STDOUT, errors=FILE_OUT_STDERR)
def append_and_complain(script, log, errors):
    pass


@binary(binary="{{tool}}", args="-c {{script}} ignored {{folder}}", working_dir="{{folder}}/wd")
@task(where=FILE_OUT_STDOUT)
def run_in(tool, script, folder, where):
    pass


def read(path):
    with open(path) as handle:
        return handle.read()
"""


def test_parameters_become_the_command_line_with_prefixes_and_streams(program, tmp_path):
    path = api_program(program, BINARY_TASKS, """
        if __name__ == "__main__":
            folder = sys.argv[1]
            source = os.path.join(folder, "data.txt")
            with open(source, "w") as handle:
                handle.write("Hi there\\nbye\\nHi again\\n")
            out = os.path.join(folder, "arguments.txt")
            code = show_arguments("%s\\n", "x", "7", [1, 2.5, "z"], "secret", True, None,
                                  source, out)
            report("printf exit", compss_wait_on(code))
            compss_wait_on_file(out)
            lines = read(out).splitlines()
            # the sandbox path of the FILE_IN differs per run; its content must be the file's
            report("arguments", lines[:-1])
            staged = lines[-1]
            report("file argument", [staged.startswith("--in="), staged != "--in=" + source])
            matches = os.path.join(folder, "matches.txt")
            report("grep exit values", compss_wait_on([
                grepper("Hi", source, matches), grepper("nothing", source, matches + "2")]))
            compss_wait_on_file(matches)
            report("grep output", read(matches))
            ordered = os.path.join(folder, "sorted.txt")
            sort_file(["-r"], source, ordered)
            compss_wait_on_file(ordered)
            report("sort -r", read(ordered))
    """)
    sequential, distributed = same_in_fresh_folders(path, tmp_path)
    results = named(distributed)
    assert results["printf exit"] == 0
    # COMPSs: prefix glued to the value; a collection is its prefix then one argument per
    # item; Prefix "#" is left out; booleans as true/false; None contributes nothing.
    # superscalar: a prefix ending in a space is its own argument.
    assert results["arguments"] == ["--name=x", "-n", "7", "-v", "1", "2.5", "z", "true"]
    assert results["file argument"] == [True, True]
    assert results["grep exit values"] == [0, 1]            # grep: 1 = no line matched
    assert results["grep output"] == "Hi there\nHi again\n"
    assert results["sort -r"] == "".join(sorted(["Hi there\n", "bye\n", "Hi again\n"],
                                                reverse=True))


def test_exit_values_fail_by_exit_value_and_stream_modes(program, tmp_path):
    path = api_program(program, BINARY_TASKS, """
        if __name__ == "__main__":
            folder = sys.argv[1]
            report("exit values", compss_wait_on([shell("exit 0"), shell("exit 3"),
                                                  shell("kill -TERM $$")]))
            report("strict success", compss_wait_on(strict_shell("true")))
            log = os.path.join(folder, "log.txt")
            with open(log, "w") as handle:
                handle.write("first\\n")
            errors = os.path.join(folder, "errors.txt")
            append_and_complain("echo second; echo oops >&2", log, errors)
            append_and_complain("echo third", log, errors + "2")
            compss_wait_on_file(log)
            compss_wait_on_file(errors)
            report("appended stdout", read(log))
            report("stderr file", read(errors))
            where = os.path.join(folder, "where.txt")
            run_in("sh", "pwd; echo $0", folder, where)
            compss_wait_on_file(where)
            report("working_dir and args", read(where).splitlines() ==
                   [os.path.realpath(os.path.join(folder, "wd")), "ignored"])
    """)
    sequential, distributed = same_in_fresh_folders(path, tmp_path)
    results = named(distributed)
    assert results["exit values"] == [0, 3, 128 + 15]     # killed by SIGTERM: 128 + 15
    assert results["strict success"] == 0
    assert results["appended stdout"] == "first\nsecond\nthird\n"   # FILE_INOUT_STDOUT appends
    assert results["stderr file"] == "oops\n"
    assert results["working_dir and args"] is True


def test_output_not_redirected_goes_to_the_job_output(program, tmp_path):
    path = api_program(program, BINARY_TASKS, """
        if __name__ == "__main__":
            report("exit", compss_wait_on(shell("echo from-the-binary; echo to-stderr >&2")))
    """)
    sequential, distributed = same_in_fresh_folders(path, tmp_path)
    assert "from-the-binary" in sequential.stdout      # python prog.py: the terminal
    assert "to-stderr" in sequential.stderr
    jobs = distributed.log_dir / "jobs"
    out = "".join(p.read_text() for p in jobs.glob("job*_NEW.out"))
    err = "".join(p.read_text() for p in jobs.glob("job*_NEW.err"))
    assert "from-the-binary" in out and "to-stderr" in err
    assert "from-the-binary" not in distributed.stdout


def test_failures_name_the_task_and_the_command(program, tmp_path):
    """A missing binary, and a non-zero exit with fail_by_exit_value: the task fails (the run
    exits non-zero) and the error names the task and the binary, in both modes."""
    path = api_program(program, BINARY_TASKS, """
        @binary(binary="no_such_tool_xyz")
        @task(returns=int)
        def run_missing(value):
            pass


        @binary(binary="./not/here/tool")
        @task(returns=int)
        def run_missing_path():
            pass


        if __name__ == "__main__":
            calls = (lambda: run_missing(1), run_missing_path, lambda: strict_shell("exit 4"))
            for call in calls:
                try:
                    compss_wait_on(call())
                    report("error", None)
                except Exception as error:
                    report("error", describe_error(error))
    """)
    sequential, distributed = run_both(path, cwd=tmp_path)
    assert distributed.returncode == 1, describe(distributed)
    for run in (sequential, distributed):
        errors = [item[1] for item in run.results]
        assert [error[0] for error in errors] == ["CommandError"] * 3, describe(run)
        assert "task 'run_missing'" in errors[0][1]
        assert "'no_such_tool_xyz' not found" in errors[0][1]
        assert "task 'run_missing_path'" in errors[1][1] and "not/here/tool" in errors[1][1]
        assert "task 'strict_shell'" in errors[2][1] and "exited with value 4" in errors[2][1]


def test_chained_binary_tasks_on_two_nodes_match_python(program, tmp_path):
    """A pipeline of binaries over files (sort | uniq -c | sort -n), spread on two workers;
    the result is checked against Python's own counting."""
    path = api_program(program, """
        import collections
        from pycompss.api.binary import binary


        @binary(binary="sort")
        @task(source=FILE_IN_STDIN, target=FILE_OUT_STDOUT)
        def sort_file(source, target):
            pass


        @binary(binary="uniq", args="-c")
        @task(source=FILE_IN_STDIN, target=FILE_OUT_STDOUT)
        def count_runs(source, target):
            pass


        @binary(binary="sh", args="-c {{script}}")
        @task(target=FILE_INOUT_STDOUT)
        def append(script, target):
            pass


        if __name__ == "__main__":
            folder = sys.argv[1]
            words = [f"w{(i * 7) % 13}" for i in range(200)]
            counted = []
            for part in range(4):
                source = os.path.join(folder, f"part{part}.txt")
                with open(source, "w") as handle:
                    handle.write("".join(w + "\\n" for w in words[part::4]))
                ordered, counts = source + ".sorted", source + ".counts"
                sort_file(source, ordered)
                count_runs(ordered, counts)
                append(f"echo end-of-part-{part}", counts)
                counted.append(counts)
            totals = collections.Counter()
            for part, counts in enumerate(counted):
                compss_wait_on_file(counts)
                with open(counts) as handle:
                    lines = handle.read().split("\\n")
                assert lines[-2] == f"end-of-part-{part}", lines
                for line in lines[:-2]:
                    number, word = line.split()
                    totals[word] += int(number)
            report("counts", sorted(totals.items()))
            report("matches python", dict(totals) == dict(collections.Counter(words)))
    """)
    sequential, distributed = same_in_fresh_folders(path, tmp_path, resources=TWO_NODES)
    assert named(distributed)["matches python"] is True


def test_binary_must_sit_above_task(program):
    path = api_program(program, """
        from pycompss.api.binary import binary


        @task(returns=int)
        @binary(binary="true")
        def wrong_order():
            pass
    """)
    run = run_program(path, mode="python")
    assert run.returncode != 0
    assert "@binary on 'wrong_order' must be placed above @task" in run.stderr, describe(run)


def test_tools_used_here_exist():
    for tool in ("printf", "grep", "sort", "sh", "uniq"):
        assert shutil.which(tool), tool


def test_prolog_and_epilog_around_python_and_binary_tasks(program, tmp_path):
    """Commands in the task's sandbox before and after it, in either decorator order; a failing
    prolog fails the task (fail_by_exit_value defaults to True), a failing epilog does not
    (False), as in PyCOMPSs."""
    path = api_program(program, BINARY_TASKS, """
        from pycompss.api.prolog import prolog
        from pycompss.api.epilog import epilog


        @prolog(binary="sh", args="-c 'echo made > {{scratch}}'")
        @epilog(binary="sh", args="-c 'cat {{scratch}} >> {{report_file}}; echo after >> {{report_file}}'")
        @task(scratch=FILE_OUT, report_file=FILE_OUT, returns=1)
        def python_between(scratch, report_file):
            with open(scratch) as handle:            # written by the prolog
                made_by_prolog = handle.read()
            with open(report_file, "w") as handle:
                handle.write("body saw " + made_by_prolog)
            return made_by_prolog.strip()


        @binary(binary="sh", args="-c 'cat marker'")
        @prolog(binary="sh", args="-c 'echo from-prolog > marker'")
        @task(out=FILE_OUT_STDOUT, returns=int)
        def binary_after_prolog(out):
            pass


        @prolog(binary="false")
        @task(returns=1)
        def failing_prolog():
            return "body ran"


        @epilog(binary="false")
        @task(returns=1)
        def failing_epilog():
            return "kept"


        @task(returns=1)
        def calls_a_binary_task(code):
            return shell(f"exit {code}")          # inside a task: runs the binary right here


        if __name__ == "__main__":
            folder = sys.argv[1]
            report_file = os.path.join(folder, "report.txt")
            scratch = os.path.join(folder, "scratch.txt")
            report("python", compss_wait_on(python_between(scratch, report_file)))
            compss_wait_on_file(report_file)
            report("python report", read(report_file))
            out = os.path.join(folder, "out.txt")
            report("binary", compss_wait_on(binary_after_prolog(out)))
            compss_wait_on_file(out)
            report("binary output", read(out))
            report("failing epilog", compss_wait_on(failing_epilog()))
            report("nested", compss_wait_on(calls_a_binary_task(5)))
            try:
                report("failing prolog", compss_wait_on(failing_prolog()))
            except Exception as error:
                report("failing prolog", describe_error(error))
    """)
    runs = []
    for mode in ("python", "runcompss"):
        (tmp_path / mode).mkdir()
        runs.append(run_program(path, mode=mode, args=[tmp_path / mode], cwd=tmp_path))
    assert runs[1].returncode == 1, describe(runs[1])      # failing_prolog failed
    for run in runs:
        results = named(run)
        assert results["python"] == "made", describe(run)
        assert results["python report"] == "body saw made\nmade\nafter\n"
        assert results["binary"] == 0 and results["binary output"] == "from-prolog\n"
        assert results["failing epilog"] == "kept"
        assert results["nested"] == 5
        kind, message = results["failing prolog"]
        assert kind == "CommandError" and "@prolog of task 'failing_prolog'" in message
        assert "exited with value 1" in message


def test_time_out_ends_the_command_with_its_executor(program, tmp_path):
    """The executor is killed at the time-out; the command it started must not outlive it."""
    import psutil
    marker = "83.125"           # a sleep length no other process here uses
    path = api_program(program, f"""
        from pycompss.api.binary import binary


        @binary(binary="sleep")
        @task(returns=int, time_out=1)
        def nap(seconds):
            pass


        if __name__ == "__main__":
            try:
                report("nap", compss_wait_on(nap({marker})))
            except Exception as error:
                report("nap", type(error).__name__)
    """)
    run = run_program(path, cwd=tmp_path, timeout=60)
    assert run.returncode == 1, describe(run)
    assert named(run)["nap"] != 0

    def leftovers():
        found = []
        for process in psutil.process_iter(["cmdline"]):
            if process.info["cmdline"] and marker in process.info["cmdline"]:
                found.append(process.pid)
        return found
    deadline = time.monotonic() + 10
    while leftovers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert leftovers() == []


def test_argument_templates_and_boolean_fields(monkeypatch):
    from runtime.core.params import ParamSpec
    from runtime.worker.command_line import (CommandError, ParameterSlot, bind_arguments,
                                             expand_arguments, resolve_flag, substitute)
    plain, prefixed = ParamSpec(), ParamSpec(prefix="--v=")
    slots = (ParameterSlot("message", "positional", plain),
             ParameterSlot("items", "positional", prefixed),
             ParameterSlot("rest", "varargs", plain),
             ParameterSlot("options", "varkeyword", plain))
    named = bind_arguments(slots, ("two words", [1, 2], "r1", "r2"), {"level": 3})
    # a whole-token placeholder is the parameter's arguments (with its prefix); inside a
    # token, the value's text; quotes group as in a shell
    assert expand_arguments("-m {{message}} '{{message}} here' {{items}} x{{rest}} "
                            "--level={{level}}", named, "t") == [
        "-m", "two words", "two words here", "--v=", "1", "2", "xr1 r2", "--level=3"]
    monkeypatch.setenv("TOOLS", "/opt/tools")
    assert substitute("$TOOLS/{{message}}", {"message": "bin"}, "t") == "/opt/tools/bin"
    with pytest.raises(CommandError, match=r"'\{\{nope\}\}' is not a parameter"):
        expand_arguments("{{nope}}", named, "t")
    monkeypatch.setenv("FAIL_ON_ERROR", "true")
    assert resolve_flag("FAIL_ON_ERROR", "t", "fail_by_exit_value") is True
    assert resolve_flag("$FAIL_ON_ERROR", "t", "fail_by_exit_value") is True
    assert resolve_flag("false", "t", "fail_by_exit_value") is False
    with pytest.raises(CommandError, match="neither a boolean"):
        resolve_flag("UNSET_VARIABLE_XYZ", "t", "fail_by_exit_value")
