"""Random programs of tasks over shared objects and files: the distributed run (real workers,
two nodes) gives exactly the final values of the sequential run."""
import textwrap

from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import TWO_NODES, assert_same_as_sequential

PRELUDE = '''
import json, os
from pycompss.api.task import task
from pycompss.api.parameter import *
from pycompss.api.api import compss_wait_on, compss_wait_on_file, compss_open

@task(obj=INOUT)
def push(obj, value):
    obj.append(value)

@task(returns=1)
def total(obj):
    return sum(obj)

@task(target=INOUT)
def absorb(source, target):
    target.append(sum(source) % 97)

@task(returns=1, col=COLLECTION_IN)
def collect(col):
    return sum(sum(item) if isinstance(item, list) else item for item in col)

@task(path=FILE_INOUT)
def append_line(path, text):
    with open(path, "a") as handle:
        handle.write(text + "\\n")

@task(returns=1, path=FILE_IN)
def count_lines(path):
    with open(path) as handle:
        return len(handle.readlines())

@task(path=FILE_OUT)
def rewrite(path, text):
    with open(path, "w") as handle:
        handle.write(text + "\\n")

@task(returns=1)
def plus(a, b):
    return a + b

here = os.path.dirname(os.path.abspath(__file__))
objects = [[0], [1], [2]]
files = [os.path.join(here, f"file{i}.txt") for i in range(2)]
for path in files:
    with open(path, "w") as handle:
        handle.write("start\\n")
futures = []
'''

objects = st.integers(0, 2)
statements = st.one_of(
    st.builds(lambda o, v: f"push(objects[{o}], {v})", objects, st.integers(0, 9)),
    st.builds(lambda o: f"futures.append(total(objects[{o}]))", objects),
    st.builds(lambda pair: f"absorb(objects[{pair[0]}], objects[{pair[1]}])",
              st.tuples(objects, objects).filter(lambda pair: pair[0] != pair[1])),
    st.builds(lambda: "futures.append(collect([objects[0], objects[1], *futures[-2:]]))"),
    st.builds(lambda f, t: f"append_line(files[{f}], '{t}')", st.integers(0, 1),
              st.sampled_from(["a", "b", "c"])),
    st.builds(lambda f: f"futures.append(count_lines(files[{f}]))", st.integers(0, 1)),
    st.builds(lambda f: f"rewrite(files[{f}], 'fresh')", st.integers(0, 1)),
    st.builds(lambda: "futures.append(plus(futures[-1], futures[-2]) if len(futures) > 1 "
                      "else total(objects[0]))"),
    st.builds(lambda o: f"objects[{o}] = compss_wait_on(objects[{o}]); objects[{o}].append(5)",
              objects),
    st.builds(lambda f: f"with compss_open(files[{f}], 'a') as handle: handle.write('main\\n')",
              st.integers(0, 1)),
)

EPILOGUE = '''
values = compss_wait_on(futures)
final_objects = compss_wait_on(objects)
contents = []
for path in files:
    with compss_open(path) as handle:
        contents.append(handle.read())
print("RESULT", json.dumps([values, final_objects, contents]))
'''


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(statements, min_size=5, max_size=30))
def test_random_program_matches_sequential(program, lines):
    source = PRELUDE + "\n".join(lines) + "\n" + EPILOGUE
    path = program(textwrap.dedent(source))
    assert_same_as_sequential(path, resources=TWO_NODES)
