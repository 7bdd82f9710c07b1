"""Content keys (runtime.master.identity) and pack records (runtime.worker.persist), without a
runtime: functions are compiled from source text as an edited program would be, and stability
across processes is checked in fresh interpreters with different hash seeds."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import types

from conftest import REPO
from runtime.master.identity import FunctionIdentities, frames_identity, path_identity
from runtime.worker.execution import Output
from runtime.worker.persist import PackReader, append_record, pack_paths, scan


def compiled(source: str, name: str = "task_body", module: str = "__main__"):
    """The function `name` of a module made from `source` (a stand-in for the app file)."""
    namespace = types.ModuleType(module).__dict__
    exec(compile(textwrap.dedent(source), "app.py", "exec"), namespace)
    return namespace[name]


BASE = """
    import math
    SCALE = 3
    def helper(x):
        return x + 1
    class Model:
        factor = 2
        def apply(self, x):
            return x * self.factor
    def task_body(x, offset=1):
        return helper(x) * SCALE + Model().apply(offset) + math.floor(0.5)
"""


def identity(source: str, name: str = "task_body") -> bytes:
    return FunctionIdentities().of(compiled(source, name))


def test_same_code_same_identity_and_line_moves_do_not_matter():
    assert identity(BASE) == identity(BASE)
    assert identity("\n\n# a comment\n" + textwrap.dedent(BASE)) == identity(BASE)


def test_every_ingredient_of_the_code_changes_the_identity():
    edits = {
        "body": BASE.replace("* SCALE +", "* SCALE -"),
        "helper it calls": BASE.replace("return x + 1", "return x + 2"),
        "global constant": BASE.replace("SCALE = 3", "SCALE = 4"),
        "default argument": BASE.replace("offset=1", "offset=2"),
        "class attribute": BASE.replace("factor = 2", "factor = 5"),
        "method body": BASE.replace("x * self.factor", "x + self.factor"),
    }
    base = identity(BASE)
    identities = {what: identity(source) for what, source in edits.items()}
    for what, changed in identities.items():
        assert changed != base, f"changing the {what} kept the identity"
    assert len(set(identities.values())) == len(identities)


def test_closure_values_are_part_of_the_identity():
    source = """
        def make(power):
            def task_body(x):
                return x ** power
            return task_body
    """
    make = compiled(source, "make")
    assert FunctionIdentities().of(make(2)) == FunctionIdentities().of(make(2))
    assert FunctionIdentities().of(make(2)) != FunctionIdentities().of(make(3))


def test_recursive_functions_terminate():
    source = """
        def task_body(n):
            return 1 if n < 2 else n * task_body(n - 1)
    """
    assert identity(source) == identity(source)


STABILITY_SCRIPT = """
import sys, textwrap, types
sys.path.insert(0, sys.argv[1])
from runtime.master.identity import FunctionIdentities, frames_identity
from runtime.transport.payload import serialize
namespace = types.ModuleType("__main__").__dict__
exec(compile(textwrap.dedent('''
    import numpy as np
    LABELS = {"alpha", "beta", "gamma", "delta"}
    class Point:
        def __init__(self, x):
            self.x = x
    def task_body(p):
        return p.x * len(LABELS) + np.pi
'''), "app.py", "exec"), namespace)
sys.modules["__main__"].__dict__.update(namespace)
cls = namespace["Point"]
print(FunctionIdentities().of(namespace["task_body"]).hex(),
      frames_identity(serialize(cls(4))).hex())
"""


def test_identities_are_stable_across_processes():
    """Hash randomization and cloudpickle's random class ids must not change any key."""
    outputs = set()
    for seed in ("1", "2", "3"):
        completed = subprocess.run([sys.executable, "-c", STABILITY_SCRIPT, str(REPO)],
                                   env=dict(os.environ, PYTHONHASHSEED=seed),
                                   capture_output=True, text=True, timeout=60)
        assert completed.returncode == 0, completed.stderr
        outputs.add(completed.stdout.strip())
    assert len(outputs) == 1, outputs


def test_data_identities(tmp_path):
    assert frames_identity([b"abc"]) == frames_identity([memoryview(b"abc")])
    assert frames_identity([b"abc"]) != frames_identity([b"abd"])
    assert frames_identity([b"ab", b"c"]) != frames_identity([b"a", b"bc"])
    (tmp_path / "input.txt").write_text("one")
    first = path_identity("file", str(tmp_path / "input.txt"))
    (tmp_path / "input.txt").write_text("two")
    assert path_identity("file", str(tmp_path / "input.txt")) != first
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "a").write_text("a")
    before = path_identity("dir", str(tree))
    (tree / "sub" / "b").write_text("")
    assert path_identity("dir", str(tree)) != before


def test_pack_records_survive_a_truncated_tail(tmp_path):
    folder = str(tmp_path / "outputs")
    produced = tmp_path / "produced.txt"
    produced.write_text("file output")
    records = []
    for index in range(3):
        key = bytes([index]) * 16
        outputs = [Output(f"d{index}v1", "obj", [b"head", b"x" * (70_000 + index)], None, 0),
                   Output(f"d{index}v2", "file", None, str(produced), 11)]
        append_record({"persist": [folder, key, [f"d{index}v1", f"d{index}v2"]]}, outputs)
        records.append(key)
    [pack] = pack_paths(folder)
    found, end = scan(pack)
    assert [key for key, _, _ in found] == records and end == os.path.getsize(pack)

    with open(pack, "r+b") as handle:             # a kill -9 in the middle of the last write
        handle.truncate(end - 10)
    found, end = scan(pack)
    assert [key for key, _, _ in found] == records[:2]
    _, offset, length = found[1]
    (kind, frames, _, nbytes), (file_kind, _, path, _) = PackReader().read(
        folder, os.path.basename(pack), offset, length)
    assert kind == "obj" and bytes(frames[1]) == b"x" * 70_001 and nbytes == 70_005
    assert file_kind == "file" and open(path).read() == "file output"


def test_mismatched_outputs_are_not_persisted(tmp_path):
    folder = str(tmp_path / "outputs")
    append_record({"name": "t", "persist": [folder, b"k" * 16, ["d1v1", "d2v1"]]},
                  [Output("d1v1", "obj", [b"only one"], None, 8)])
    assert all(scan(pack)[0] == [] for pack in pack_paths(folder))
