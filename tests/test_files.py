"""FILE_* and DIRECTORY_* parameters, compss_open / wait_on_file / delete_file / file_exists,
and the write-back of final file versions when the run ends.

Programs take a folder as argv[1]; the sequential reference and the runcompss run each get
their own folder (helpers_api.same_in_fresh_folders), so the files left on disk can be checked
after each run exits.
"""
import pytest

from conftest import TWO_NODES
from helpers_api import api_program, named, same_in_fresh_folders

pytestmark = pytest.mark.timeout(300)

FILE_TASKS = """
import pathlib


@task(path=FILE_INOUT)
def increment(path):
    with open(path) as handle:
        value = int(handle.read())
    with open(path, "w") as handle:
        handle.write(str(value + 1))


@task(returns=1, path=FILE_IN)
def read_int(path):
    with open(path) as handle:
        return int(handle.read())


@task(returns=1, path=FILE)
def slow_read_text(path):
    time.sleep(0.2)                  # makes a wrong order likely, never asserted on
    with open(path) as handle:
        return handle.read()


@task(path=FILE_OUT)
def write_text(path, text):
    with open(path, "w") as handle:
        handle.write(text)


def read_local(path):
    with open(path) as handle:
        return handle.read()
"""


def test_file_inout_chains_and_out_then_in(program, tmp_path):
    path = api_program(program, FILE_TASKS, """
        if __name__ == "__main__":
            folder = sys.argv[1]
            counters = [os.path.join(folder, f"counter{i}.txt") for i in range(3)]
            for index, counter in enumerate(counters):
                with open(counter, "w") as handle:
                    handle.write(str(index * 100))
            early = read_int(counters[0])            # WAR: submitted before the increments
            for _ in range(5):
                for counter in counters:
                    increment(counter)
            middle = read_int(counters[1])
            increment(pathlib.Path(counters[1]))     # a Path names the same file as the str
            report("early", compss_wait_on(early))
            report("middle", compss_wait_on(middle))
            report("counters", [compss_wait_on(read_int(c)) for c in counters])

            produced = os.path.join(folder, "produced.txt")
            write_text(produced, "first")
            first = slow_read_text(produced)
            write_text(produced, "second")          # WAW with the first write
            second = slow_read_text(produced)
            report("out_then_in", compss_wait_on([first, second]))

            waited = os.path.join(folder, "waited.txt")
            write_text(waited, "42")
            increment(waited)
            compss_wait_on_file(waited)
            report("wait_on_file", read_local(waited))
            increment(waited)                        # used by tasks again after the wait
            report("after_wait", compss_wait_on(read_int(waited)))

            never_waited = os.path.join(folder, "never_waited.txt")
            write_text(never_waited, "7")
            increment(never_waited)                  # written back when the run ends
    """)
    _, distributed = same_in_fresh_folders(path, tmp_path, resources=TWO_NODES)
    assert named(distributed) == {"early": 0, "middle": 105, "counters": [5, 106, 205],
                                  "out_then_in": ["first", "second"], "wait_on_file": "43",
                                  "after_wait": 44}
    for mode in ("seq", "dist"):
        folder = tmp_path / mode
        assert [(folder / f"counter{i}.txt").read_text() for i in range(3)] == ["5", "106", "205"]
        assert (folder / "produced.txt").read_text() == "second"
        assert (folder / "waited.txt").read_text() == "44"
        assert (folder / "never_waited.txt").read_text() == "8"


def test_compss_open_delete_and_exists(program, tmp_path):
    path = api_program(program, FILE_TASKS, """
        if __name__ == "__main__":
            folder = sys.argv[1]
            counter = os.path.join(folder, "counter.txt")
            write_text(counter, "1")
            increment(counter)
            report("exists_tracked", compss_file_exists(counter))
            with compss_open(counter) as handle:          # read mode: waits for the chain
                report("open_read", handle.read())

            with compss_open(counter, "w") as handle:     # the application writes a version
                handle.write("100")
            increment(counter)
            report("task_after_open_write", compss_wait_on(read_int(counter)))

            increment(counter)
            with compss_open(counter, "a") as handle:     # append to the newest version
                handle.write("0")
            increment(counter)
            with compss_open(counter, "r") as handle:
                report("after_append", handle.read())

            plain = os.path.join(folder, "plain.txt")
            with open(plain, "w") as handle:
                handle.write("untracked")
            report("exists_plain", compss_file_exists(plain))
            report("exists_missing", compss_file_exists(os.path.join(folder, "missing.txt")))

            doomed = os.path.join(folder, "doomed.txt")
            write_text(doomed, "x")
            reader = slow_read_text(doomed)
            compss_delete_file(doomed)
            report("reader_of_deleted", compss_wait_on(reader))
            report("deleted", [compss_file_exists(doomed), os.path.exists(doomed)])

            reused = os.path.join(folder, "reused.txt")
            write_text(reused, "old")
            compss_wait_on_file(reused)
            compss_delete_file(reused)
            write_text(reused, "new")                     # the path is a fresh datum now
            report("reused", compss_wait_on(slow_read_text(reused)))
    """)
    _, distributed = same_in_fresh_folders(path, tmp_path)
    assert named(distributed) == {
        "exists_tracked": True, "open_read": "2", "task_after_open_write": 101,
        "after_append": "1021", "exists_plain": True, "exists_missing": False,
        "reader_of_deleted": "x", "deleted": [False, False], "reused": "new"}
    for mode in ("seq", "dist"):
        folder = tmp_path / mode
        assert (folder / "counter.txt").read_text() == "1021"
        assert not (folder / "doomed.txt").exists()
        assert (folder / "reused.txt").read_text() == "new"


def test_file_concurrent_and_commutative(program, tmp_path):
    path = api_program(program, FILE_TASKS, """
        @task(path=FILE_COMMUTATIVE)
        def add_line_commutative(path, line):
            with open(path, "a") as handle:
                handle.write(line + "\\n")

        @task(path=FILE_CONCURRENT)
        def add_line_concurrent(path, line):
            with open(path, "a") as handle:
                handle.write(line + "\\n")

        if __name__ == "__main__":
            folder = sys.argv[1]
            log = os.path.join(folder, "log.txt")
            write_text(log, "start\\n")
            for index in range(6):
                add_line_commutative(log, f"c{index}")
            between = slow_read_text(log)
            for index in range(6):
                add_line_concurrent(log, f"k{index}")
            final = slow_read_text(log)
            between, final = compss_wait_on(between), compss_wait_on(final)
            report("between", sorted(between.split()))
            report("final", sorted(final.split()))
            report("first_line", final.split()[0])
    """)
    _, distributed = same_in_fresh_folders(path, tmp_path, resources=TWO_NODES)
    commutative = [f"c{i}" for i in range(6)]
    assert named(distributed) == {
        "between": sorted(["start", *commutative]),
        "final": sorted(["start", *commutative, *[f"k{i}" for i in range(6)]]),
        "first_line": "start"}


def test_directories(program, tmp_path):
    path = api_program(program, """
        @task(folder=DIRECTORY_OUT)
        def make_parts(folder, count):
            os.makedirs(folder, exist_ok=True)
            for index in range(count):
                with open(os.path.join(folder, f"part{index}.txt"), "w") as handle:
                    handle.write(str(index * index))

        @task(returns=1, folder=DIRECTORY_IN)
        def read_parts(folder):
            time.sleep(0.2)
            contents = {}
            for name in sorted(os.listdir(folder)):
                with open(os.path.join(folder, name)) as handle:
                    contents[name] = handle.read()
            return contents

        @task(folder=DIRECTORY_INOUT)
        def add_part(folder, name, text):
            with open(os.path.join(folder, name), "w") as handle:
                handle.write(text)

        @task(folder=DIRECTORY_INOUT)
        def remove_part(folder, name):
            os.remove(os.path.join(folder, name))

        if __name__ == "__main__":
            root = sys.argv[1]
            out = os.path.join(root, "out")
            make_parts(out, 3)
            first = read_parts(out)
            add_part(out, "extra.txt", "E")
            second = read_parts(out)
            remove_part(out, "part0.txt")
            report("first", compss_wait_on(first))
            report("second", compss_wait_on(second))
            compss_wait_on_directory(out)
            report("on_disk", sorted(os.listdir(out)))

            existing = os.path.join(root, "existing")
            os.makedirs(os.path.join(existing, "sub"))
            with open(os.path.join(existing, "sub", "deep.txt"), "w") as handle:
                handle.write("deep")
            add_part(existing, "top.txt", "T")       # never waited: written back at the end
            report("existing_in", compss_wait_on(read_parts(os.path.join(existing, "sub"))))
    """)
    _, distributed = same_in_fresh_folders(path, tmp_path, resources=TWO_NODES)
    parts = {"part0.txt": "0", "part1.txt": "1", "part2.txt": "4"}
    assert named(distributed) == {
        "first": parts, "second": {**parts, "extra.txt": "E"},
        "on_disk": ["extra.txt", "part1.txt", "part2.txt"],
        "existing_in": {"deep.txt": "deep"}}
    for mode in ("seq", "dist"):
        existing = tmp_path / mode / "existing"
        assert (existing / "top.txt").read_text() == "T"
        assert (existing / "sub" / "deep.txt").read_text() == "deep"
        assert sorted(p.name for p in (tmp_path / mode / "out").iterdir()) == \
            ["extra.txt", "part1.txt", "part2.txt"]


def test_one_file_read_and_updated_on_both_nodes(program, tmp_path):
    path = api_program(program, FILE_TASKS, """
        @task(returns=1, path=FILE_IN)
        def read_words(path, index):
            with open(path) as handle:
                words = handle.read().split()
            return [index, len(words), words[index % len(words)]]

        @task(path=FILE_INOUT)
        def append_word(path, word):
            with open(path, "a") as handle:
                handle.write(" " + word)

        if __name__ == "__main__":
            folder = sys.argv[1]
            shared = os.path.join(folder, "shared.txt")
            with open(shared, "w") as handle:
                handle.write("alpha beta gamma")
            readers = [read_words(shared, i) for i in range(8)]    # many readers, one file
            append_word(shared, "delta")
            later = [read_words(shared, i) for i in range(8)]
            append_word(shared, "epsilon")
            report("readers", compss_wait_on(readers))
            report("later", compss_wait_on(later))
            with compss_open(shared) as handle:
                report("final", handle.read())
    """)
    _, distributed = same_in_fresh_folders(path, tmp_path, resources=TWO_NODES)
    words = ["alpha", "beta", "gamma"]
    more = words + ["delta"]
    results = named(distributed)
    assert results["readers"] == [[i, 3, words[i % 3]] for i in range(8)]
    assert results["later"] == [[i, 4, more[i % 4]] for i in range(8)]
    assert results["final"] == "alpha beta gamma delta epsilon"
    assert (tmp_path / "dist" / "shared.txt").read_text() == "alpha beta gamma delta epsilon"
