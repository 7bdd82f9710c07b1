"""Parameter directions, returns, call forms, renaming and capture semantics.

Every program runs twice, `python prog.py` (the sequential reference) and `runcompss`, and the
named results must agree; each test also checks the values against plain Python / numpy.
"""
import numpy as np
import pytest

from conftest import TWO_NODES, assert_same_as_sequential, run_program
from helpers_api import api_program, describe, named

pytestmark = pytest.mark.timeout(300)


def test_object_directions(program):
    path = api_program(program, """
        @task(returns=1)
        def total(x):
            x.append(100)            # an IN argument: the change stays inside the task
            return sum(x)

        @task(x=OUT)
        def fill(x, n):
            x.clear()
            x.extend(range(n))

        @task(x=INOUT)
        def append(x, value):
            x.append(value)

        @task(returns=1, x=IN_DELETE)
        def consume(x):
            return sum(x)

        @task(returns=1)
        def make(values):
            return list(values)

        @task(x=CONCURRENT)
        def concurrent_add(x, value):
            x += value

        @task(x=COMMUTATIVE)
        def commutative_add(x, value):
            x["total"] += value
            x["count"] += 1

        @task(returns=1)
        def snapshot(x):
            return dict(x)

        if __name__ == "__main__":
            a = [1, 2, 3]
            s = total(a)
            report("in_result", compss_wait_on(s))
            report("in_caller_unchanged", a)

            b = ["stale"]
            fill(b, 5)
            report("out", compss_wait_on(b))

            c = [0]
            for value in range(1, 6):
                append(c, value)
            report("inout_chain", compss_wait_on(c))

            d = [4, 5, 6]
            report("in_delete_object", compss_wait_on(consume(d)))
            report("in_delete_object_again", compss_wait_on(consume(d)))   # a fresh datum
            report("in_delete_caller_unchanged", d)
            f = make([7, 8])
            report("in_delete_future", compss_wait_on(consume(f)))

            counter = np.zeros(4)
            for value in range(8):
                concurrent_add(counter, value)
            report("concurrent", compss_wait_on(counter).tolist())

            stats = {"total": 0, "count": 0}
            for value in range(10):
                commutative_add(stats, value)
            between = snapshot(stats)              # an IN read after the commutative run
            for value in range(10, 13):
                commutative_add(stats, value)
            report("commutative_between", compss_wait_on(between))
            report("commutative_final", compss_wait_on(stats))

            mixed = [0]
            append(mixed, 1)                       # INOUT, then commutative, then INOUT
            e = {"total": 0, "count": 0}
            for value in range(4):
                commutative_add(e, value)
            append(mixed, 2)
            report("mixed", [compss_wait_on(mixed), compss_wait_on(e)])
    """)
    results = named(assert_same_as_sequential(path, resources=TWO_NODES))
    assert results == {
        "in_result": 106, "in_caller_unchanged": [1, 2, 3], "out": [0, 1, 2, 3, 4],
        "inout_chain": [0, 1, 2, 3, 4, 5], "in_delete_object": 15,
        "in_delete_object_again": 15, "in_delete_caller_unchanged": [4, 5, 6],
        "in_delete_future": 15, "concurrent": [28.0] * 4,
        "commutative_between": {"total": 45, "count": 10},
        "commutative_final": {"total": 78, "count": 13},
        "mixed": [[0, 1, 2], {"total": 6, "count": 4}]}


def test_returns_variants_and_per_call_override(program):
    path = api_program(program, """
        @task(returns=1)
        def one(x):
            return x + 1

        @task(returns=2)
        def two(x):
            return x, x * 2

        @task(returns="3")
        def three(x):
            return x, x + 1, x + 2

        @task(returns=int)
        def typed(x):
            return x * 10

        @task(returns=(int, list))
        def typed_pair(x):
            return x, [x] * 2

        @task(returns=dict)
        def as_dict(x):
            return {"x": x}

        @task(returns=list)
        def as_list(x):
            return [x, x]           # one result that happens to be a list

        @task()
        def nothing(x):
            return x                # no returns declared: the call gives None

        @task(returns=1)
        def flexible(x, n):
            return tuple(range(x, x + n)) if n > 1 else x

        if __name__ == "__main__":
            report("one", compss_wait_on(one(1)))
            a, b = two(3)
            report("two", [compss_wait_on(a), compss_wait_on(b)])
            futures = three(10)
            report("three_len", len(futures))
            report("three", list(compss_wait_on(*futures)))
            report("typed", compss_wait_on(typed(4)))
            x, y = typed_pair(5)
            report("typed_pair", compss_wait_on([x, y]))
            report("as_dict", compss_wait_on(as_dict(6)))
            report("as_list", compss_wait_on(as_list(7)))
            report("nothing", nothing(8) is None)
            p, q, r = flexible(20, 3, returns=3)
            report("override3", [compss_wait_on(p), compss_wait_on(q), compss_wait_on(r)])
            report("override1", compss_wait_on(flexible(30, 1)))
            m, n = two(1, returns="2")
            report("override_str", compss_wait_on([m, n]))
            chained = one(two(5)[1])                 # a future of a multi-return as input
            report("chained", compss_wait_on(chained))
            twice = one(100)
            report("wait_twice", [compss_wait_on(twice), compss_wait_on(twice)])
            report("wait_plain_values", [compss_wait_on(5), compss_wait_on("s"),
                                         compss_wait_on([1, {"k": 2}])])
            report("wait_many", list(compss_wait_on(one(1), 7, [one(2)])))
    """)
    results = named(assert_same_as_sequential(path))
    assert results == {"one": 2, "two": [3, 6], "three_len": 3, "three": [10, 11, 12],
                       "typed": 40, "typed_pair": [5, [5, 5]], "as_dict": {"x": 6},
                       "as_list": [7, 7], "nothing": True, "override3": [20, 21, 22],
                       "override1": 30, "override_str": [1, 2], "chained": 11,
                       "wait_twice": [101, 101], "wait_plain_values": [5, "s", [1, {"k": 2}]],
                       "wait_many": [2, 7, [3]]}


def test_call_forms_priority_varargs_kwargs_keyword_only_defaults(program):
    path = api_program(program, """
        @task(returns=1, priority=True)
        def urgent(x):
            return x * 3

        @task(returns=1)
        def value(x):
            return x

        @task(returns=1)
        def vsum(*numbers):
            return sum(numbers)

        @task(returns=1)
        def head_and_rest(first, *rest):
            return [first, list(rest)]

        @task(varargs_type=INOUT)
        def push_all(item, *lists):
            for target in lists:
                target.append(item)

        @task(returns=1)
        def options(a, **extra):
            return [a, sorted(extra.items())]

        @task(returns=1, out=INOUT)
        def keyword_only(a, *, scale, offset=1, out):
            out.append(a * scale + offset)
            return a * scale + offset

        @task(returns=1)
        def defaults(a, b=10, c=None, d=(1, 2)):
            return [a, b, c, list(d)]

        if __name__ == "__main__":
            urgent_results = [urgent(i) for i in range(5)]
            report("priority", compss_wait_on(urgent_results))

            report("varargs_plain", compss_wait_on(vsum(1, 2, 3, 4)))
            report("varargs_futures", compss_wait_on(vsum(value(5), 6, value(7))))
            report("varargs_none", compss_wait_on(vsum()))
            report("head_and_rest", compss_wait_on(head_and_rest(value(1), value(2), 3)))
            left, right = [0], ["r"]
            push_all("x", left, right)
            push_all(value("y"), left, right)
            report("varargs_inout", [compss_wait_on(left), compss_wait_on(right)])

            report("kwargs", compss_wait_on(options(1, zeta=value(26), alpha=[value(1), 2])))
            report("kwargs_empty", compss_wait_on(options(value(2))))

            sink = []
            first = keyword_only(2, scale=value(5), out=sink)
            second = keyword_only(value(3), scale=2, offset=value(0), out=sink)
            report("keyword_only", [compss_wait_on(first), compss_wait_on(second),
                                    compss_wait_on(sink)])

            report("defaults", compss_wait_on([defaults(1), defaults(1, 2), defaults(1, c=value(3)),
                                               defaults(a=value(0), d=(7,))]))
    """)
    results = named(assert_same_as_sequential(path))
    assert results == {
        "priority": [0, 3, 6, 9, 12], "varargs_plain": 10, "varargs_futures": 18,
        "varargs_none": 0, "head_and_rest": [1, [2, 3]],
        "varargs_inout": [[0, "x", "y"], ["r", "x", "y"]],
        "kwargs": [1, [["alpha", [1, 2]], ["zeta", 26]]], "kwargs_empty": [2, []],
        "keyword_only": [11, 6, [11, 6]],
        "defaults": [[1, 10, None, [1, 2]], [1, 2, None, [1, 2]], [1, 10, 3, [1, 2]],
                     [0, 10, None, [7]]]}


def test_war_and_waw_are_removed_by_renaming(program):
    path = api_program(program, """
        @task(returns=1)
        def slow_read(x):
            time.sleep(0.15)          # makes a wrong order likely, never asserted on
            return list(x) if not isinstance(x, np.ndarray) else x.tolist()

        @task(x=INOUT)
        def append(x, value):
            x.append(value)

        @task(x=INOUT)
        def scale(x, factor):
            x *= factor

        @task(returns=1)
        def make(values):
            return list(values)

        @task(returns=1)
        def replace(values):
            return list(values)

        if __name__ == "__main__":
            data = [1]
            before = slow_read(data)          # WAR: submitted before the writer
            append(data, 2)
            middle = slow_read(data)
            append(data, 3)
            report("war", compss_wait_on([before, middle]))
            report("war_final", compss_wait_on(data))

            array = np.arange(4.0)
            old = slow_read(array)
            scale(array, 10)
            new = slow_read(array)
            scale(array, 0.5)
            report("war_array", compss_wait_on([old, new]))
            report("array_final", compss_wait_on(array).tolist())

            f = make([1, 2])
            readers = [slow_read(f)]
            append(f, 3)                      # INOUT on a future
            readers.append(slow_read(f))
            append(f, 4)
            report("war_future", compss_wait_on(readers))
            report("future_final", compss_wait_on(f))

            g = make([0])                     # WAW on a name: each future is its own datum
            first_reader = slow_read(g)
            g = replace([5])
            report("waw_rebind", compss_wait_on([first_reader, slow_read(g), g]))
    """)
    results = named(assert_same_as_sequential(path, resources=TWO_NODES))
    assert results == {"war": [[1], [1, 2]], "war_final": [1, 2, 3],
                       "war_array": [[0.0, 1.0, 2.0, 3.0], [0.0, 10.0, 20.0, 30.0]],
                       "array_final": [0.0, 5.0, 10.0, 15.0],
                       "war_future": [[1, 2], [1, 2, 3]], "future_final": [1, 2, 3, 4],
                       "waw_rebind": [[0], [5], [5]]}


def test_out_after_inout_on_the_same_object_waw(program):
    """OUT on an object the runtime already tracks (it was INOUT before): a new version."""
    path = api_program(program, """
        @task(returns=1)
        def slow_read(x):
            time.sleep(0.3)
            return list(x)

        @task(x=INOUT)
        def append(x, value):
            x.append(value)

        @task(x=OUT)
        def overwrite(x, values):
            x.clear()
            x.extend(values)

        if __name__ == "__main__":
            data = [1]
            append(data, 2)
            before = slow_read(data)
            overwrite(data, [9])              # WAW with the append, WAR with the read
            after_first = slow_read(data)
            overwrite(data, [8, 8])           # WAW with the first overwrite
            report("reads", compss_wait_on([before, after_first]))
            report("final", compss_wait_on(data))
    """)
    results = named(assert_same_as_sequential(path, resources=TWO_NODES, timeout=20))
    assert results == {"reads": [[1, 2], [9]], "final": [8, 8]}


def test_in_values_are_captured_at_call_time(program):
    path = api_program(program, """
        @task(returns=1)
        def slow_copy(x):
            time.sleep(0.2)
            return x.tolist() if isinstance(x, np.ndarray) else x

        if __name__ == "__main__":
            items = [1, 2, 3]
            got_list = slow_copy(items)
            items.append(4)
            items[0] = -1

            array = np.arange(5)
            got_array = slow_copy(array)
            array[:] = 7

            mapping = {"a": [1]}
            got_dict = slow_copy(mapping)
            mapping["a"].append(2)
            mapping["b"] = 3

            nested = [[0, 0], {"k": np.ones(2)}]
            got_nested = slow_copy(nested)
            nested[0][0] = 99
            nested[1]["k"][:] = 5
            report("list", compss_wait_on(got_list))
            report("array", compss_wait_on(got_array))
            report("dict", compss_wait_on(got_dict))
            n = compss_wait_on(got_nested)
            report("nested", [n[0], n[1]["k"].tolist()])
            report("caller_kept_changes", [items, array.tolist(), mapping])
    """)
    results = named(assert_same_as_sequential(path))
    assert results == {"list": [1, 2, 3], "array": [0, 1, 2, 3, 4], "dict": {"a": [1]},
                       "nested": [[0, 0], [1.0, 1.0]],
                       "caller_kept_changes": [[-1, 2, 3, 4], [7] * 5,
                                               {"a": [1, 2], "b": 3}]}


def test_numpy_arrays_in_and_inout(program):
    path = api_program(program, """
        @task(returns=1)
        def matmul(a, b):
            return a @ b

        @task(c=INOUT)
        def multiply_accumulate(a, b, c):
            c += a @ b

        @task(returns=1)
        def describe(a):
            return [str(a.dtype), list(a.shape), bool(a.flags["C_CONTIGUOUS"]),
                    bool(a.flags["F_CONTIGUOUS"]), a.tolist()]

        @task(x=INOUT)
        def negate(x):
            x *= -1

        @task(returns=1)
        def checksum(a):
            return [float(a.sum()), float(a[::9973].sum()), a.shape[0]]

        if __name__ == "__main__":
            n = 6
            a = np.arange(n * n, dtype=np.float64).reshape(n, n) / 7.0
            b = (np.arange(n * n, dtype=np.float64).reshape(n, n) % 5) - 2.0
            report("matmul", compss_wait_on(matmul(a, b)).tolist())

            c = np.zeros((n, n))
            for k in range(3):
                multiply_accumulate(a + k, b, c)
            report("multiply_accumulate", compss_wait_on(c).tolist())

            blocks = [[np.full((2, 2), float(i * 2 + j)) for j in range(2)] for i in range(2)]
            for i in range(2):
                for j in range(2):
                    multiply_accumulate(blocks[i][j], np.eye(2), blocks[i][j])
            blocks = compss_wait_on(blocks)
            report("blocks", [[block.tolist() for block in row] for row in blocks])

            samples = {
                "int32": np.arange(6, dtype=np.int32).reshape(2, 3),
                "float32": np.linspace(0, 1, 5, dtype=np.float32),
                "bool": np.array([True, False, True]),
                "complex": np.array([1 + 2j, -3j]),
                "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
                "view": np.arange(20.0).reshape(4, 5)[1:, ::2],
                "zero_d": np.array(3.5),
                "empty": np.zeros((0, 3)),
            }
            described = {name: describe(value) for name, value in samples.items()}
            described = compss_wait_on(described)
            for name, (dtype, shape, c_order, f_order, values) in described.items():
                if name == "complex":
                    values = [[v.real, v.imag] for v in np.array(values).tolist()]
                report("dtype_" + name, [dtype, shape, values])

            f = np.asfortranarray(np.arange(6.0).reshape(2, 3))
            negate(f)
            report("inout_fortran", compss_wait_on(f).tolist())
            v = np.arange(10.0)[::3]
            negate(v)
            report("inout_view", compss_wait_on(v).tolist())

            big = np.arange(2_000_000, dtype=np.float64)
            negate(big)
            report("big", compss_wait_on(checksum(big)))
    """)
    results = named(assert_same_as_sequential(path, resources=TWO_NODES))
    n = 6
    a = np.arange(n * n, dtype=np.float64).reshape(n, n) / 7.0
    b = (np.arange(n * n, dtype=np.float64).reshape(n, n) % 5) - 2.0
    assert np.allclose(results["matmul"], a @ b)
    assert np.allclose(results["multiply_accumulate"], sum((a + k) @ b for k in range(3)))
    assert results["blocks"] == [[np.full((2, 2), 2.0 * (i * 2 + j)).tolist() for j in range(2)]
                                 for i in range(2)]
    assert results["dtype_int32"] == ["int32", [2, 3], [[0, 1, 2], [3, 4, 5]]]
    assert results["dtype_float32"] == ["float32", [5], np.linspace(0, 1, 5, dtype=np.float32)
                                        .tolist()]
    assert results["dtype_bool"] == ["bool", [3], [True, False, True]]
    assert results["dtype_complex"] == ["complex128", [2], [[1.0, 2.0], [0.0, -3.0]]]
    assert results["dtype_fortran"] == ["float64", [2, 3], [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]]
    assert results["dtype_view"] == ["float64", [3, 3], np.arange(20.0).reshape(4, 5)[1:, ::2]
                                     .tolist()]
    assert results["dtype_zero_d"] == ["float64", [], 3.5]
    assert results["dtype_empty"] == ["float64", [0, 3], []]
    assert results["inout_fortran"] == (-np.arange(6.0).reshape(2, 3)).tolist()
    assert results["inout_view"] == [-0.0, -3.0, -6.0, -9.0]
    big = -np.arange(2_000_000, dtype=np.float64)
    assert results["big"] == [float(big.sum()), float(big[::9973].sum()), 2_000_000]


def test_futures_inside_containers_passed_as_in(program):
    path = api_program(program, """
        @task(returns=1)
        def value(x):
            return x

        def _sum(obj):
            if isinstance(obj, dict):
                return sum(_sum(v) for v in obj.values())
            if isinstance(obj, (list, tuple)):
                return sum(_sum(v) for v in obj)
            return obj

        @task(returns=1)
        def flatten_sum(obj):
            return _sum(obj)

        class Box:
            def __init__(self, content, label):
                self.content = content
                self.label = label

        @task(returns=1)
        def unbox(box):
            return [box.label, box.content]

        @task(returns=1)
        def structure(obj):
            def shape(o):
                if isinstance(o, dict):
                    return {k: shape(v) for k, v in o.items()}
                if isinstance(o, tuple):
                    return ["tuple", [shape(v) for v in o]]
                if isinstance(o, list):
                    return [shape(v) for v in o]
                return o
            return shape(obj)

        if __name__ == "__main__":
            a, b, c = value(1), value(2), value(3)
            report("list", compss_wait_on(structure([a, b, 10])))
            report("dict", compss_wait_on(structure({"x": a, "y": [b, {"z": c}]})))
            report("tuple", compss_wait_on(structure((a, (b, 5)))))
            report("sum", compss_wait_on(flatten_sum({"p": [a, b], "q": (c, 4)})))
            same_twice = [a, a, a]
            report("repeated", compss_wait_on(structure(same_twice)))
            report("wait_nested", compss_wait_on({"k": [a, (b, c)], "plain": 5}))
            report("attribute", compss_wait_on(unbox(Box([a, b], "box"))))
    """)
    results = named(assert_same_as_sequential(path, resources=TWO_NODES))
    assert results == {"list": [1, 2, 10], "dict": {"x": 1, "y": [2, {"z": 3}]},
                       "tuple": ["tuple", [1, ["tuple", [2, 5]]]], "sum": 10,
                       "repeated": [1, 1, 1], "wait_nested": {"k": [1, [2, 3]], "plain": 5},
                       "attribute": ["box", [1, 2]]}


def test_task_called_inside_a_task_runs_as_a_plain_call(program):
    path = api_program(program, """
        @task(returns=1)
        def double(x):
            return x * 2

        @task(x=INOUT)
        def grow(x):
            x.append(len(x))

        @task(returns=1)
        def outer(x):
            items = [x]
            grow(items)                      # a plain call: mutates items in place
            return double(x) + 1 + len(items)

        @task(returns=1)
        def recursive_fib(n):
            return n if n < 2 else recursive_fib(n - 1) + recursive_fib(n - 2)

        if __name__ == "__main__":
            report("nested", compss_wait_on(outer(10)))
            report("nested_future_input", compss_wait_on(outer(double(3))))
            report("recursive", compss_wait_on(recursive_fib(12)))
    """)
    results = named(assert_same_as_sequential(path))
    assert results == {"nested": 23, "nested_future_input": 15, "recursive": 144}


ONE_CORE = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<ResourcesList>
    <ComputeNode Name="localhost">
        <Processor Name="MainProcessor">
            <ComputingUnits>1</ComputingUnits>
        </Processor>
    </ComputeNode>
</ResourcesList>
"""


def test_priority_tasks_run_before_queued_normal_tasks(program, tmp_path):
    """Only under runcompss (sequentially every task runs at its call). One core is held by a
    gate task until every other task is queued, so the order they then run in is the
    scheduler's choice alone: priority tasks first."""
    resources = tmp_path / "one_core.xml"
    resources.write_text(ONE_CORE)
    path = api_program(program, """
        @task(returns=1)
        def gate(marker):
            deadline = time.monotonic() + 30
            while not os.path.exists(marker) and time.monotonic() < deadline:
                time.sleep(0.02)
            return 0

        def log(folder, name):
            with open(os.path.join(folder, "order.txt"), "a") as handle:
                handle.write(name + "\\n")

        @task(returns=1)
        def normal(folder, name):
            log(folder, name)
            return name

        @task(returns=1, priority=True)
        def urgent(folder, name):
            log(folder, name)
            return name

        if __name__ == "__main__":
            folder = sys.argv[1]
            marker = os.path.join(folder, "go")
            held = gate(marker)
            names = []
            for index in range(3):
                names.append(normal(folder, f"n{index}"))
                names.append(urgent(folder, f"u{index}"))
            with open(marker, "w"):
                pass
            report("values", compss_wait_on([held] + names))
            with open(os.path.join(folder, "order.txt")) as handle:
                report("order", handle.read().split())
    """)
    run = run_program(path, args=[tmp_path], resources=resources)
    assert run.returncode == 0, describe(run)
    results = named(run)
    assert results["values"] == [0, "n0", "u0", "n1", "u1", "n2", "u2"]
    order = results["order"]
    assert sorted(order[:3]) == ["u0", "u1", "u2"], order
    assert sorted(order[3:]) == ["n0", "n1", "n2"], order
