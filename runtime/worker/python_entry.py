"""Runs a task's Python body in another process: on every rank of a Python @mpi task, or in a
container for a Python @container task.

    python -m runtime.worker.python_entry [--mpi] DIR

    DIR/call.pkl      (body, args, kwargs, layouts), written by the runner
    DIR/results.pkl   --mpi: [result of rank 0, rank 1, ...] (gathered on rank 0); else the result
    DIR/rankN.error   (rank, exception type, message, traceback): the runner raises it

MPI: rank 0 reads the call, broadcasts the body and the arguments every rank shares, and
scatters each rank its part of the collections that have a `<param>_layout`; a failing rank
writes its error and aborts the job (MPI_Abort), so no rank waits forever in a collective.
"""
from __future__ import annotations

import os
import pickle
import sys
import traceback

import cloudpickle

from ..core.context import mark_worker_process


def rank_indices(layout: tuple, rank: int, size: int, length: int) -> list[int]:
    """The collection indices a rank gets (PyCOMPSs' layout): blocks rank, rank + size, ... of
    `block_length` elements starting every `stride` elements; -1 means the default (block_count:
    one block per rank, block_length: 1, stride: 1). In collection order."""
    block_count, block_length, stride = layout
    block_count = size if block_count in (-1, None) else block_count
    block_length = 1 if block_length in (-1, None) else block_length
    stride = 1 if stride in (-1, None) else stride
    indices = set()
    for block in range(rank, block_count, size):
        start = block * stride
        indices.update(range(start, start + block_length))
    return sorted(index for index in indices if 0 <= index < length)


def split_for_ranks(args: tuple, kwargs: dict, targets: list, size: int):
    """(arguments shared by all ranks, [the laid-out parts of rank 0, rank 1, ...])."""
    shared_args, shared_kwargs = list(args), dict(kwargs)
    parts = [{} for _ in range(size)]
    for target, layout in targets:
        place, key = target
        collection = shared_args[key] if place == "arg" else shared_kwargs[key]
        if not isinstance(collection, (list, tuple)):
            raise TypeError(f"parameter with a layout must be a collection (list or tuple), "
                            f"got {type(collection).__name__}")
        for rank in range(size):
            chosen = [collection[index] for index in
                      rank_indices(layout, rank, size, len(collection))]
            parts[rank][(place, key)] = type(collection)(chosen) if isinstance(
                collection, tuple) else chosen
        if place == "arg":
            shared_args[key] = None
        else:
            shared_kwargs[key] = None
    return (shared_args, shared_kwargs), parts


def _apply(shared: tuple, part: dict) -> tuple[list, dict]:
    args, kwargs = list(shared[0]), dict(shared[1])
    for (place, key), value in part.items():
        if place == "arg":
            args[key] = value
        else:
            kwargs[key] = value
    return args, kwargs


def _write_error(directory: str, rank: int, error: BaseException) -> None:
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    sys.stderr.write(f"[rank {rank}] {text}")
    sys.stderr.flush()
    record = (rank, type(error).__name__, str(error), text)
    path = os.path.join(directory, f"rank{rank}.error")
    with open(path + ".tmp", "wb") as handle:
        pickle.dump(record, handle)
    os.replace(path + ".tmp", path)


def _write_result(directory: str, value) -> None:
    path = os.path.join(directory, "results.pkl")
    with open(path + ".tmp", "wb") as handle:
        handle.write(cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    os.replace(path + ".tmp", path)


def _load(directory: str):
    with open(os.path.join(directory, "call.pkl"), "rb") as handle:
        return cloudpickle.load(handle)


def run_mpi(directory: str) -> int:
    from mpi4py import MPI
    world = MPI.COMM_WORLD
    rank, size = world.Get_rank(), world.Get_size()
    try:
        # cloudpickle, not mpi4py's pickle: the body may be defined in the application's
        # __main__, which the ranks do not import.
        if rank == 0:
            body, args, kwargs, targets = _load(directory)
            shared, parts = split_for_ranks(args, kwargs, targets, size)
            common = cloudpickle.dumps((body, shared), protocol=pickle.HIGHEST_PROTOCOL)
            parts = [cloudpickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL) for part in parts]
        else:
            common, parts = None, None
        body, shared = cloudpickle.loads(world.bcast(common, root=0))
        part = cloudpickle.loads(world.scatter(parts, root=0))
        args, kwargs = _apply(shared, part)
        result = body(*args, **kwargs)
        results = world.gather(cloudpickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL),
                               root=0)
        if rank == 0:
            _write_result(directory, [cloudpickle.loads(data) for data in results])
    except BaseException as error:   # noqa: BLE001 - any failure is the task's, reported
        _write_error(directory, rank, error)
        world.Abort(1)
    return 0


def run_single(directory: str) -> int:
    try:
        body, args, kwargs, _ = _load(directory)
        _write_result(directory, body(*args, **kwargs))
    except BaseException as error:   # noqa: BLE001
        _write_error(directory, 0, error)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    mpi = "--mpi" in arguments
    arguments = [a for a in arguments if a != "--mpi"]
    if len(arguments) != 1:
        sys.stderr.write("usage: python -m runtime.worker.python_entry [--mpi] DIR\n")
        return 2
    mark_worker_process()             # task calls inside the body are plain calls
    return run_mpi(arguments[0]) if mpi else run_single(arguments[0])


if __name__ == "__main__":
    sys.exit(main())
