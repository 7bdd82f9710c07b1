"""Counters in files: K increments of each of 3 counter files, as FILE_INOUT tasks.

Every increment of a file reads the version the previous one wrote, so the
runtime must chain the K tasks of a file while the files proceed in parallel.
The master then reads the counters back through both PyCOMPSs ways of
synchronising a file: `compss_open` and `compss_wait_on_file`.

    python apps/increment/increment.py [K]
    runcompss apps/increment/increment.py [K]
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

from pycompss.api.api import compss_open, compss_wait_on_file
from pycompss.api.parameter import FILE_INOUT
from pycompss.api.task import task

INITIAL_VALUES = (0, 10, 100)


@task(fname=FILE_INOUT)
def increment(fname):
    with open(fname) as counter:
        value = int(counter.read())
    with open(fname, "w") as counter:
        counter.write(str(value + 1))


def write_counters(directory):
    paths = []
    for index, value in enumerate(INITIAL_VALUES):
        path = os.path.join(directory, f"counter_{index}.txt")
        with open(path, "w") as counter:
            counter.write(str(value))
        paths.append(path)
    return paths


def read_counter(path, use_compss_open):
    if use_compss_open:
        with compss_open(path) as counter:
            return int(counter.read())
    compss_wait_on_file(path)
    with open(path) as counter:
        return int(counter.read())


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("times", nargs="?", type=int, default=3, help="K: increments per file (default 3)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    directory = tempfile.mkdtemp(prefix="increment-")
    try:
        paths = write_counters(directory)
        start = time.perf_counter()
        for _ in range(args.times):
            for path in paths:
                increment(path)
        values = [read_counter(path, index % 2 == 0) for index, path in enumerate(paths)]
        elapsed = time.perf_counter() - start
    finally:
        shutil.rmtree(directory, ignore_errors=True)

    expected = [value + args.times for value in INITIAL_VALUES]
    print(f"increment: {len(paths)} files x {args.times} increments, {elapsed:.3f} s, "
          f"counters {INITIAL_VALUES} -> {tuple(values)}")
    if values != expected:
        print(f"RESULT_MISMATCH: got {values}, expected {expected}", file=sys.stderr)
        return 1
    print("RESULT_OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
