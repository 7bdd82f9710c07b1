"""Blocked matrix multiplication: C = A @ B over an N x N grid of M x M blocks.

The README's main demo. The blocks of A and B are made by tasks and never
come back to the master; the blocks of C are plain numpy arrays made here and
handed to `multiply` as INOUT, so the runtime must order the N updates of each
C block and give back their last version at `compss_wait_on`.

    python apps/matmul/matmul.py [N] [M]          # sequential, no runtime
    runcompss apps/matmul/matmul.py [N] [M]       # parallel
"""
import argparse
import sys
import time

import numpy as np

from pycompss.api.api import compss_wait_on
from pycompss.api.parameter import INOUT
from pycompss.api.task import task


def make_block(size, seed):
    """The one definition of a block's content, shared by the task and the check."""
    return np.random.default_rng(seed).random((size, size))


@task(returns=1)
def generate_block(size, seed):
    return make_block(size, seed)


@task(c=INOUT)
def multiply(a, b, c):
    c += a @ b


def seeds(blocks):
    """Seeds of A's and B's blocks: distinct, so that no two blocks are equal."""
    seeds_a = [[i * blocks + j for j in range(blocks)] for i in range(blocks)]
    seeds_b = [[blocks * blocks + seed for seed in row] for row in seeds_a]
    return seeds_a, seeds_b


def blocked_product(blocks, size):
    seeds_a, seeds_b = seeds(blocks)
    a = [[generate_block(size, seed) for seed in row] for row in seeds_a]
    b = [[generate_block(size, seed) for seed in row] for row in seeds_b]
    c = [[np.zeros((size, size)) for _ in range(blocks)] for _ in range(blocks)]
    for i in range(blocks):
        for j in range(blocks):
            for k in range(blocks):
                multiply(a[i][k], b[k][j], c[i][j])
    return compss_wait_on(c)


def reference_product(blocks, size):
    """numpy's full product of the same matrices, with no task involved."""
    seeds_a, seeds_b = seeds(blocks)
    a = np.block([[make_block(size, seed) for seed in row] for row in seeds_a])
    b = np.block([[make_block(size, seed) for seed in row] for row in seeds_b])
    return a @ b


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("blocks", nargs="?", type=int, default=4, help="N: blocks per side (default 4)")
    parser.add_argument("block_size", nargs="?", type=int, default=64, help="M: block side (default 64)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    c_blocks = blocked_product(args.blocks, args.block_size)
    elapsed = time.perf_counter() - start

    expected = reference_product(args.blocks, args.block_size)
    result = np.block(c_blocks)
    max_error = float(np.max(np.abs(result - expected)))
    side = args.blocks * args.block_size
    print(f"matmul: {args.blocks}x{args.blocks} blocks of {args.block_size}x{args.block_size} "
          f"({side}x{side} matrix), {args.blocks ** 3} multiply tasks, "
          f"{elapsed:.3f} s, max |error| {max_error:.2e}")
    # Blocked and full products sum in different orders: equal up to rounding.
    if result.shape != expected.shape or not np.allclose(result, expected, rtol=1e-10, atol=1e-10):
        print(f"RESULT_MISMATCH: max |error| {max_error:.3e} against numpy", file=sys.stderr)
        return 1
    print("RESULT_OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
