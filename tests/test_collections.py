"""COLLECTION_* and DICTIONARY_* parameters: element-wise data, depth 1-3, files as leaves.

Each program runs sequentially (`python prog.py`, the reference) and under runcompss; the
named results must agree and equal values computed here in plain Python.
"""
import pytest

from conftest import TWO_NODES, assert_same_as_sequential
from helpers_api import api_program, named, same_in_fresh_folders

pytestmark = pytest.mark.timeout(300)


def test_collection_directions_depth_one(program):
    path = api_program(program, """
        @task(returns=1)
        def square(x):
            return x * x

        @task(returns=1, values=COLLECTION_IN)
        def total(values):
            return sum(values)

        @task(returns=1, values=COLLECTION_IN)
        def shapes(values):
            result = [type(values).__name__, len(values)]
            if isinstance(values, list):
                values.append("local")      # IN: the caller never sees this
            return result

        @task(values=COLLECTION_OUT)
        def fill(values, base):
            for index in range(len(values)):
                values[index] = base + index

        @task(values=COLLECTION_INOUT)
        def increment_all(values):
            for index in range(len(values)):
                values[index] = values[index] + 1

        @task(arrays=COLLECTION_INOUT)
        def scale_all(arrays, factor):
            for array in arrays:
                array *= factor

        @task(returns=1, values=COLLECTION_IN_DELETE)
        def consume(values):
            return sum(values)

        @task(returns=1)
        def single(x):
            return x

        @task(array=INOUT)
        def scale_one(array, factor):
            array *= factor

        if __name__ == "__main__":
            squares = [square(i) for i in range(6)]
            report("in_futures", compss_wait_on(total(squares)))
            report("in_tuple", compss_wait_on(total((square(2), 1, square(3)))))
            plain = [1, 2, 3]
            report("in_shape", compss_wait_on(shapes(plain)))
            report("in_tuple_shape", compss_wait_on(shapes((1, 2))))
            report("in_caller_unchanged", plain)

            out = [None] * 4
            fill(out, 10)
            element = single(out[2])         # one element of an OUT collection, as a future
            report("out_element", compss_wait_on(element))
            report("out_total", compss_wait_on(total(out)))
            increment_all(out)
            increment_all(out)
            report("inout_after_out", compss_wait_on(out))

            futures = [square(i) for i in range(4)]
            increment_all(futures)
            report("inout_futures", compss_wait_on(futures))

            arrays = [np.full(3, float(i)) for i in range(3)]
            before = total(arrays)           # reads the versions before scaling (WAR)
            scale_all(arrays, 10.0)
            after = total(arrays)
            report("inout_arrays_before", compss_wait_on(before).tolist())
            report("inout_arrays_after", compss_wait_on(after).tolist())
            report("plain_in_after_inout", compss_wait_on(single(out)))
            scale_one(arrays[1], -1.0)       # one element of the collection, alone
            report("element_inout_then_collection", compss_wait_on(total(arrays)).tolist())
            report("inout_arrays", [a.tolist() for a in compss_wait_on(arrays)])

            pair = (np.zeros(2), np.ones(2))        # a tuple collection: elements updated
            scale_all(pair, 3.0)
            report("inout_tuple", [a.tolist() for a in compss_wait_on(pair)])

            gone = [square(5), 1]
            report("in_delete", compss_wait_on(consume(gone)))
            report("in_delete_plain", compss_wait_on(consume([4, 5])))
            report("empty", compss_wait_on(total([])))
    """)
    results = named(assert_same_as_sequential(path, resources=TWO_NODES))
    assert results == {
        "in_futures": sum(i * i for i in range(6)), "in_tuple": 14,
        "in_shape": ["list", 3], "in_tuple_shape": ["tuple", 2],
        "in_caller_unchanged": [1, 2, 3], "out_element": 12, "out_total": 46,
        "inout_after_out": [12, 13, 14, 15], "inout_futures": [1, 2, 5, 10],
        "inout_arrays_before": [3.0] * 3, "inout_arrays_after": [30.0] * 3,
        "plain_in_after_inout": [12, 13, 14, 15], "element_inout_then_collection": [10.0] * 3,
        "inout_arrays": [[0.0] * 3, [-10.0] * 3, [20.0] * 3],
        "inout_tuple": [[0.0, 0.0], [3.0, 3.0]], "in_delete": 26, "in_delete_plain": 9, "empty": 0}


def test_nested_collections_depth_two_and_three(program):
    path = api_program(program, """
        @task(returns=1)
        def make(x):
            return x

        @task(returns=1, grid={Type: COLLECTION_IN, Depth: 2})
        def grid_sum(grid):
            return [sum(row) for row in grid]

        @task(grid={Type: COLLECTION_INOUT, Depth: 2})
        def add_position(grid):
            for i, row in enumerate(grid):
                for j in range(len(row)):
                    row[j] = row[j] + 10 * i + j

        @task(grid={Type: COLLECTION_OUT, Depth: 2})
        def fill_grid(grid):
            for i, row in enumerate(grid):
                for j in range(len(row)):
                    row[j] = [i, j]

        @task(blocks={Type: COLLECTION_INOUT, Depth: 2})
        def scale_blocks(blocks, factor):
            for row in blocks:
                for block in row:
                    block *= factor

        @task(cube={Type: COLLECTION_INOUT, Depth: 3})
        def bump(cube):
            for plane in cube:
                for row in plane:
                    for k in range(len(row)):
                        row[k] = row[k] + 1

        @task(returns=1, cube={Type: COLLECTION_IN, Depth: 3})
        def cube_sum(cube):
            return sum(x for plane in cube for row in plane for x in row)

        @task(returns=1, cube={Type: COLLECTION_IN_DELETE, Depth: 3})
        def cube_count(cube):
            return sum(len(row) for plane in cube for row in plane)

        @task(returns=1, rows={Type: COLLECTION_IN, Depth: 1})
        def depth_one_rows(rows):
            return [type(row).__name__ for row in rows]

        if __name__ == "__main__":
            grid = [[make(i * 3 + j) for j in range(3)] for i in range(2)]
            report("depth2_in_futures", compss_wait_on(grid_sum(grid)))
            add_position(grid)
            report("depth2_inout", compss_wait_on(grid))

            shaped = [[None, None], [None, None, None]]
            fill_grid(shaped)
            report("depth2_out_sum_input", compss_wait_on(depth_one_rows(shaped)))
            report("depth2_out", compss_wait_on(shaped))

            blocks = [[np.full((2, 2), float(i + j)) for j in range(2)] for i in range(2)]
            scale_blocks(blocks, 3.0)
            scale_blocks(blocks, 2.0)
            blocks = compss_wait_on(blocks)
            report("depth2_arrays", [[b.tolist() for b in row] for row in blocks])

            cube = [[[make(1), 2], [3]], [[4, 5, make(6)]]]
            bump(cube)
            total = cube_sum(cube)
            bump(cube)
            report("depth3_sum_between", compss_wait_on(total))
            report("depth3_count", compss_wait_on(cube_count([[[1, 2], [3]], [[4]]])))
            report("depth3", compss_wait_on(cube))
    """)
    results = named(assert_same_as_sequential(path, resources=TWO_NODES))
    assert results == {
        "depth2_in_futures": [3, 12],
        "depth2_inout": [[0, 2, 4], [13, 15, 17]],
        "depth2_out_sum_input": ["list", "list"],
        "depth2_out": [[[0, 0], [0, 1]], [[1, 0], [1, 1], [1, 2]]],
        "depth2_arrays": [[[[6.0 * (i + j)] * 2] * 2 for j in range(2)] for i in range(2)],
        "depth3_sum_between": 21 + 6,
        "depth3_count": 4,
        "depth3": [[[3, 4], [5]], [[6, 7, 8]]]}


def test_collection_of_files(program, tmp_path):
    path = api_program(program, """
        @task(paths=COLLECTION_FILE_OUT)
        def write_all(paths, word):
            for index, path in enumerate(paths):
                with open(path, "w") as handle:
                    handle.write(f"{word}{index}\\n")

        @task(paths=COLLECTION_FILE_INOUT)
        def append_all(paths, word):
            for path in paths:
                with open(path, "a") as handle:
                    handle.write(word + "\\n")

        @task(returns=1, paths=COLLECTION_FILE_IN)
        def read_all(paths):
            contents = []
            for path in paths:
                with open(path) as handle:
                    contents.append(handle.read().split())
            return contents

        @task(returns=1, path=FILE_IN)
        def read_one(path):
            with open(path) as handle:
                return handle.read().split()

        if __name__ == "__main__":
            folder = sys.argv[1]
            paths = [os.path.join(folder, f"part{i}.txt") for i in range(3)]
            write_all(paths, "w")
            first = read_all(paths)
            append_all(paths, "x")
            append_all(paths, "y")
            report("read_between", compss_wait_on(first))
            report("read_after", compss_wait_on(read_all(paths)))
            report("element_as_file_in", compss_wait_on(read_one(paths[1])))
            compss_wait_on_file(*paths)
            on_disk = []
            for path in paths:
                with open(path) as handle:
                    on_disk.append(handle.read().split())
            report("on_disk", on_disk)

            existing = os.path.join(folder, "existing.txt")
            with open(existing, "w") as handle:
                handle.write("e\\n")
            append_all([existing], "z")
            report("existing", compss_wait_on(read_one(existing)))
    """)
    _, distributed = same_in_fresh_folders(path, tmp_path, resources=TWO_NODES)
    results = named(distributed)
    assert results == {
        "read_between": [["w0"], ["w1"], ["w2"]],
        "read_after": [["w0", "x", "y"], ["w1", "x", "y"], ["w2", "x", "y"]],
        "element_as_file_in": ["w1", "x", "y"],
        "on_disk": [["w0", "x", "y"], ["w1", "x", "y"], ["w2", "x", "y"]],
        "existing": ["e", "z"]}
    for mode_dir in ("seq", "dist"):        # final versions written back after the run
        assert (tmp_path / mode_dir / "part2.txt").read_text().split() == ["w2", "x", "y"]
        assert (tmp_path / mode_dir / "existing.txt").read_text().split() == ["e", "z"]


def test_dictionary_directions_and_nested_depth_two(program):
    path = api_program(program, """
        @task(returns=1)
        def make(x):
            return x

        @task(returns=1, mapping=DICTIONARY_IN)
        def summary(mapping):
            result = sorted((str(k), v) for k, v in mapping.items())
            mapping["local"] = 1             # IN: stays inside the task
            return result

        @task(mapping=DICTIONARY_OUT)
        def fill(mapping):
            for key in mapping:
                mapping[key] = key * 2

        @task(mapping=DICTIONARY_INOUT)
        def increment(mapping):
            for key in mapping:
                mapping[key] = mapping[key] + 1

        @task(mapping=DICTIONARY_INOUT)
        def scale_arrays(mapping, factor):
            for value in mapping.values():
                value *= factor

        @task(nested={Type: DICTIONARY_INOUT, Depth: 2})
        def deep_increment(nested):
            for inner in nested.values():
                for key in inner:
                    inner[key] = inner[key] + 100

        @task(returns=1, nested={Type: DICTIONARY_IN, Depth: 2})
        def deep_total(nested):
            return {k: sum(inner.values()) for k, inner in nested.items()}

        if __name__ == "__main__":
            plain = {"a": 1, "b": 2}
            report("in_plain", compss_wait_on(summary(plain)))
            report("in_futures", compss_wait_on(summary({"x": make(5), "y": make(6)})))
            report("in_caller_unchanged", plain)

            out = {1: None, 2: None, 3: None}
            fill(out)
            increment(out)
            report("out_then_inout", compss_wait_on(out))

            counters = {"p": make(10), "q": 20}
            before = summary(counters)
            increment(counters)
            increment(counters)
            report("inout_before", compss_wait_on(before))
            report("inout", compss_wait_on(counters))

            arrays = {"u": np.arange(3.0), "v": np.ones(2)}
            scale_arrays(arrays, 4.0)
            arrays = compss_wait_on(arrays)
            report("inout_arrays", {k: v.tolist() for k, v in arrays.items()})

            nested = {"left": {"a": 1, "b": make(2)}, "right": {"c": 3}}
            deep_increment(nested)
            between = deep_total(nested)
            deep_increment(nested)
            report("depth2_between", compss_wait_on(between))
            report("depth2", compss_wait_on(nested))
    """)
    results = named(assert_same_as_sequential(path, resources=TWO_NODES))
    assert results == {
        "in_plain": [["a", 1], ["b", 2]], "in_futures": [["x", 5], ["y", 6]],
        "in_caller_unchanged": {"a": 1, "b": 2},
        "out_then_inout": {"1": 3, "2": 5, "3": 7},
        "inout_before": [["p", 10], ["q", 20]], "inout": {"p": 12, "q": 22},
        "inout_arrays": {"u": [0.0, 4.0, 8.0], "v": [4.0, 4.0]},
        "depth2_between": {"left": 203, "right": 103},
        "depth2": {"left": {"a": 201, "b": 202}, "right": {"c": 203}}}
