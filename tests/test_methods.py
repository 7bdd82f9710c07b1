"""Method tasks (self INOUT by default, target_direction=IN), classmethod and staticmethod tasks,
and instances of classes defined in the main program travelling between tasks.
"""
import pytest

from conftest import TWO_NODES, assert_same_as_sequential
from helpers_api import api_program, named

pytestmark = pytest.mark.timeout(300)

CLASSES = """
from dataclasses import dataclass


class Counter:
    def __init__(self, start=0):
        self.value = start
        self.history = []

    @task()
    def increment(self, by=1):
        self.value += by
        self.history.append(by)

    @task(returns=1)
    def get(self):
        return self.value

    @task(returns=1, target_direction=IN)
    def peek(self, factor):
        result = self.value * factor
        self.value = -1                 # read-only target: this change must not persist
        return result

    @task(returns=1, target_direction=IN)
    def merged(self, other):
        return Counter(self.value + other.value)

    @task(other=INOUT)
    def give(self, other, amount):     # self and another parameter both written
        self.value -= amount
        other.value += amount

    @classmethod
    @task(returns=1)
    def from_values(cls, values):
        counter = cls(sum(values))
        counter.history = list(values)
        return counter

    @staticmethod
    @task(returns=1)
    def combine(a, b):
        return a + b

    def state(self):
        return [type(self).__name__, self.value, self.history]


class Special(Counter):
    @task()
    def double(self):
        self.value *= 2


@dataclass
class Point:
    x: float
    y: float

    def norm2(self):
        return self.x * self.x + self.y * self.y


class Grid:
    def __init__(self, rows, cols):
        self.data = np.arange(rows * cols, dtype=float).reshape(rows, cols)

    @task()
    def scale(self, factor):
        self.data *= factor

    @task(returns=1, target_direction=IN)
    def total(self):
        return float(self.data.sum())
"""


def test_method_tasks(program):
    path = api_program(program, CLASSES, """
        if __name__ == "__main__":
            counter = Counter(5)
            for by in range(4):
                counter.increment(by)
            got = counter.get()
            peeked = counter.peek(10)
            counter.increment(by=10)
            later_peek = counter.peek(1)
            counter = compss_wait_on(counter)
            report("inout_self", counter.state())
            report("returned", [compss_wait_on(got), compss_wait_on(peeked),
                                compss_wait_on(later_peek)])

            a, b = Counter(100), Counter(1)
            a.give(b, 30)
            a.give(b, 5)
            both = compss_wait_on([a, b])
            report("two_written", [both[0].value, both[1].value])

            reader = Counter(7)
            r1 = reader.peek(2)
            r2 = reader.peek(3)
            reader = compss_wait_on(reader)
            report("in_target_unchanged", [reader.value, compss_wait_on(r1), compss_wait_on(r2)])

            grid = Grid(2, 3)
            before = grid.total()
            grid.scale(2.0)
            grid.scale(0.5)
            grid.scale(3.0)
            after = grid.total()
            grid = compss_wait_on(grid)
            report("numpy_attribute", [compss_wait_on(before), compss_wait_on(after),
                                       grid.data.tolist()])

            special = Special(3)
            special.increment(1)
            special.double()
            special = compss_wait_on(special)
            report("inherited", special.state())
    """)
    results = named(assert_same_as_sequential(path, resources=TWO_NODES))
    assert results == {
        "inout_self": ["Counter", 21, [0, 1, 2, 3, 10]],
        "returned": [11, 110, 21],
        "two_written": [65, 36],
        "in_target_unchanged": [7, 14, 21],
        "numpy_attribute": [15.0, 45.0, [[0.0, 3.0, 6.0], [9.0, 12.0, 15.0]]],
        "inherited": ["Special", 8, [1]]}


def test_classmethod_and_staticmethod_tasks(program):
    path = api_program(program, CLASSES, """
        @task(returns=1)
        def make(x):
            return x

        if __name__ == "__main__":
            built = Counter.from_values([1, 2, make(3)])
            special = Special.from_values([4])            # cls is the subclass
            built_value = compss_wait_on(built)
            special_value = compss_wait_on(special)
            report("classmethod", [built_value.state(), isinstance(built_value, Counter)])
            report("classmethod_subclass", [special_value.state(),
                                            isinstance(special_value, Special)])
            report("staticmethod", compss_wait_on(Counter.combine(make(2), 3)))
            report("staticmethod_instance", compss_wait_on(Counter(0).combine("a", "b")))
            built_value.increment(5)                       # a method task on the result
            report("method_on_result", compss_wait_on(built_value).state())
    """)
    results = named(assert_same_as_sequential(path))
    assert results == {
        "classmethod": [["Counter", 6, [1, 2, 3]], True],
        "classmethod_subclass": [["Special", 4, [4]], True],
        "staticmethod": 5, "staticmethod_instance": "ab",
        "method_on_result": ["Counter", 11, [1, 2, 3, 5]]}


def test_instances_of_main_program_classes_between_tasks(program):
    path = api_program(program, CLASSES, """
        @task(returns=1)
        def make_counter(start):
            return Counter(start)

        @task(returns=1)
        def make_point(x, y):
            return Point(x, y)

        @task(counter=INOUT)
        def absorb(counter, other):
            counter.value += other.value
            counter.history.append(type(other).__name__)

        @task(returns=1)
        def inspect_types(counter, point):
            return [isinstance(counter, Counter), isinstance(point, Point),
                    type(counter).__name__, point.norm2()]

        @task(returns=1)
        def move(point, dx):
            return Point(point.x + dx, point.y)

        @task(returns=1)
        def values(counters):
            return [c.value for c in counters]

        if __name__ == "__main__":
            first = make_counter(10)
            second = make_counter(20)
            absorb(first, second)
            absorb(first, Counter(5))
            point = make_point(3.0, 4.0)
            report("types_in_task", compss_wait_on(inspect_types(first, point)))
            moved = move(move(point, 1.0), 2.0)

            local = Counter(1)
            local.increment(2)                         # a tracked object in a plain IN list
            report("list_of_instances", compss_wait_on(values([first, second, local])))

            first = compss_wait_on(first)
            moved = compss_wait_on(moved)
            report("counter", [first.state(), isinstance(first, Counter)])
            report("point", [moved.x, moved.y, isinstance(moved, Point), moved == Point(6.0, 4.0)])
            merged = first.merged(compss_wait_on(local))
            merged = compss_wait_on(merged)
            report("merged", [merged.state(), first.value])
    """)
    results = named(assert_same_as_sequential(path, resources=TWO_NODES))
    assert results == {
        "types_in_task": [True, True, "Counter", 25.0],
        "list_of_instances": [35, 20, 3],
        "counter": [["Counter", 35, ["Counter", "Counter"]], True],
        "point": [6.0, 4.0, True, True],
        "merged": [["Counter", 38, []], 35]}
