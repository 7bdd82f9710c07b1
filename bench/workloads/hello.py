"""One task, end to end: bench/run.py times this whole program for start-up.

    runcompss bench/workloads/hello.py
"""
import sys

from pycompss.api.api import compss_wait_on
from pycompss.api.task import task


@task(returns=1)
def hello(name):
    return f"Hello, {name}!"


def main():
    greeting = compss_wait_on(hello("superscalar"))
    print(greeting)
    return 0 if greeting == "Hello, superscalar!" else 1


if __name__ == "__main__":
    sys.exit(main())
