"""A pipeline of heterogeneous tasks, all described in catalog/ (@software): programs and
Python code in one workflow.

    split_and_pack   split(1) the corpus into parts (prolog: mkdir, epilog: tar)
    sort_lines       sort -n each part, stdin/stdout redirected to files
    word_stats       a Python task counting the words of each sorted part
    python_mpi_sums  Python MPI (2 ranks, mpi4py): each rank sums its block of the counts
    mpi_ring         an MPI C program (catalog/src/mpi_ring.c, built with mpicc) on 2 ranks

Each result is checked against plain Python; RESULT_OK when all agree.

    python apps/catalog_pipeline/catalog_pipeline.py [LINES]
    runcompss apps/catalog_pipeline/catalog_pipeline.py [LINES]
"""
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile

from pycompss.api.api import compss_wait_on, compss_wait_on_file
from pycompss.api.software import software

CATALOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "catalog")
PARTS = 6


@software(config_file=os.path.join(CATALOG, "split_and_pack.json"))
def split_and_pack(lines, source, work_dir, archive):
    pass


@software(config_file=os.path.join(CATALOG, "sort_lines.json"))
def sort_lines(options, source, target):
    pass


@software(config_file=os.path.join(CATALOG, "word_stats.json"))
def word_stats(text):
    with open(text) as handle:
        words = handle.read().split()
    return len(words)


@software(config_file=os.path.join(CATALOG, "python_mpi_sums.json"))
def python_mpi_sums(values):
    from mpi4py import MPI
    return [MPI.COMM_WORLD.rank, MPI.COMM_WORLD.size, sum(values)]


@software(config_file=os.path.join(CATALOG, "mpi_ring.json"))
def mpi_ring(program, processes, rounds, result):
    pass


def read_lines(path: str) -> list:
    with open(path) as handle:
        return handle.read().splitlines()


def main(line_count: int) -> bool:
    folder = tempfile.mkdtemp(prefix="catalog-pipeline-")
    try:
        return run(folder, line_count)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(folder: str, line_count: int) -> bool:
    generator = random.Random(7)
    numbers = generator.sample(range(10 * line_count), line_count)   # distinct sort keys
    lines = [" ".join([str(number)] + [generator.choice("abcdefgh") * generator.randint(1, 3)
                                       for _ in range(generator.randint(0, 5))])
             for number in numbers]
    corpus = os.path.join(folder, "corpus.txt")
    with open(corpus, "w") as handle:
        handle.write("".join(line + "\n" for line in lines))
    archive = os.path.join(folder, "parts.tar")
    per_part = -(-line_count // PARTS)
    split_and_pack(per_part, corpus, "parts", archive)
    compss_wait_on_file(archive)
    with tarfile.open(archive) as packed:
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        packed.extractall(os.path.join(folder, "parts"), **safe)
    parts = sorted(os.path.join(folder, "parts", name)
                   for name in os.listdir(os.path.join(folder, "parts")))
    sorted_parts = [part + ".sorted" for part in parts]
    counts = []
    for part, target in zip(parts, sorted_parts):
        sort_lines(["-n"], part, target)
        counts.append(word_stats(target))
    counts = compss_wait_on(counts)
    for target in sorted_parts:
        compss_wait_on_file(target)
    per_rank = compss_wait_on(python_mpi_sums(counts + [0] * (PARTS - len(counts))))

    ring = os.path.join(folder, "mpi_ring")
    subprocess.run(["mpicc", os.path.join(CATALOG, "src", "mpi_ring.c"), "-o", ring],
                   check=True)
    ring_result = os.path.join(folder, "ring.txt")
    ring_exit = compss_wait_on(mpi_ring(ring, 2, len(parts), ring_result))
    compss_wait_on_file(ring_result)
    with open(ring_result) as handle:
        ring_text = handle.read()

    expected_parts = [lines[start:start + per_part] for start in range(0, line_count, per_part)]
    checks = {
        "parts": len(parts) == len(expected_parts),
        "sorted": all(read_lines(target) == sorted(expected, key=lambda l: int(l.split()[0]))
                      for target, expected in zip(sorted_parts, expected_parts)),
        "counts": counts == [len(" ".join(part).split()) for part in expected_parts],
        "mpi sums": sum(item[2] for item in per_rank) == sum(counts)
        and [item[:2] for item in per_rank] == [[0, 2], [1, 2]],
        "ring": ring_exit == 0 and ring_text == f"2 {len(parts) * 3}\n",
    }
    print(f"{line_count} lines in {len(parts)} parts, {sum(counts)} words; checks: {checks}")
    return all(checks.values())


if __name__ == "__main__":
    ok = main(int(sys.argv[1]) if len(sys.argv) > 1 else 60)
    print("RESULT_OK" if ok else "RESULT_MISMATCH")
    sys.exit(0 if ok else 1)
