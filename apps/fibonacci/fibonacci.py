"""Recursive Fibonacci through futures.

The master builds the recursion tree itself: below the threshold one `fib`
task computes a leaf sequentially; above it an `add` task joins the two
subtrees. The futures of the subtrees go straight into `add` without any
wait, so the whole tree is submitted before the first result is known.

    python apps/fibonacci/fibonacci.py [N] [THRESHOLD]
    runcompss apps/fibonacci/fibonacci.py [N] [THRESHOLD]
"""
import argparse
import sys
import time

from pycompss.api.api import compss_wait_on
from pycompss.api.task import task


def fib_sequential(n):
    """The naive recursion, so that a leaf task does a little real work."""
    return n if n < 2 else fib_sequential(n - 1) + fib_sequential(n - 2)


@task(returns=1)
def fib(n):
    return fib_sequential(n)


@task(returns=1)
def add(a, b):
    return a + b


def fib_tasks(n, threshold):
    """The future of fib(n); returns the number of tasks it submitted as well."""
    if n < threshold:
        return fib(n), 1
    left, left_tasks = fib_tasks(n - 1, threshold)
    right, right_tasks = fib_tasks(n - 2, threshold)
    return add(left, right), left_tasks + right_tasks + 1


def fib_iterative(n):
    """The reference: a different algorithm from the tasks' one."""
    previous, current = 0, 1
    for _ in range(n):
        previous, current = current, previous + current
    return previous


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=15, help="which Fibonacci number (default 15)")
    parser.add_argument("threshold", nargs="?", type=int, default=8,
                        help="below it a task computes sequentially (default 8, at least 2)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.n < 0 or args.threshold < 2:
        print("fibonacci: N must be >= 0 and THRESHOLD >= 2", file=sys.stderr)
        return 2
    start = time.perf_counter()
    future, tasks = fib_tasks(args.n, args.threshold)
    result = compss_wait_on(future)
    elapsed = time.perf_counter() - start

    expected = fib_iterative(args.n)
    print(f"fibonacci: fib({args.n}) = {result} with {tasks} tasks "
          f"(threshold {args.threshold}), {elapsed:.3f} s")
    if result != expected:
        print(f"RESULT_MISMATCH: got {result}, expected {expected}", file=sys.stderr)
        return 1
    print("RESULT_OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
