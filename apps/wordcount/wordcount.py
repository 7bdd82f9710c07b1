"""Word count: one task per text file, then a tree of pairwise merges.

The corpus is written by this script into a temporary directory, so the app
needs no input. Each chunk file is a FILE_IN parameter: the runtime, not the
app, makes it readable where the task runs. The partial counts are plain
dicts that travel between tasks as futures; only the final one is fetched.

    python apps/wordcount/wordcount.py [CHUNKS] [WORDS_PER_CHUNK]
    runcompss apps/wordcount/wordcount.py [CHUNKS] [WORDS_PER_CHUNK]
"""
import argparse
import collections
import os
import random
import shutil
import sys
import tempfile
import time

from pycompss.api.api import compss_wait_on
from pycompss.api.parameter import FILE_IN
from pycompss.api.task import task

VOCABULARY = ("task", "future", "worker", "master", "data", "file", "object", "graph",
              "version", "block", "array", "reduce", "merge", "count", "word", "node")


@task(returns=dict, path=FILE_IN)
def count_words(path):
    with open(path) as text:
        return dict(collections.Counter(text.read().split()))


@task(returns=dict)
def merge(a, b):
    merged = dict(a)
    for word, count in b.items():
        merged[word] = merged.get(word, 0) + count
    return merged


def write_corpus(directory, chunks, words_per_chunk, seed=7):
    """Chunk files of random words, a skewed vocabulary so that counts differ."""
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(len(VOCABULARY))]
    paths = []
    for chunk in range(chunks):
        words = rng.choices(VOCABULARY, weights=weights, k=words_per_chunk)
        lines = [" ".join(words[start:start + 12]) for start in range(0, len(words), 12)]
        path = os.path.join(directory, f"chunk_{chunk:03d}.txt")
        with open(path, "w") as text:
            text.write("\n".join(lines) + "\n")
        paths.append(path)
    return paths


def reduce_tree(partials):
    """Merge neighbours level by level; an odd one out moves up unmerged."""
    while len(partials) > 1:
        level = [merge(partials[i], partials[i + 1]) for i in range(0, len(partials) - 1, 2)]
        if len(partials) % 2:
            level.append(partials[-1])
        partials = level
    return partials[0]


def reference_counts(paths):
    counts = collections.Counter()
    for path in paths:
        with open(path) as text:
            counts.update(text.read().split())
    return counts


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chunks", nargs="?", type=int, default=8, help="number of files (default 8)")
    parser.add_argument("words", nargs="?", type=int, default=5000, help="words per file (default 5000)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.chunks < 1:
        print("wordcount: CHUNKS must be at least 1", file=sys.stderr)
        return 2
    directory = tempfile.mkdtemp(prefix="wordcount-")
    try:
        paths = write_corpus(directory, args.chunks, args.words)
        start = time.perf_counter()
        result = compss_wait_on(reduce_tree([count_words(path) for path in paths]))
        elapsed = time.perf_counter() - start
        expected = reference_counts(paths)
    finally:
        shutil.rmtree(directory, ignore_errors=True)

    top = sorted(result.items(), key=lambda item: (-item[1], item[0]))[:5]
    print(f"wordcount: {args.chunks} files, {sum(result.values())} words, "
          f"{len(result)} distinct, {elapsed:.3f} s")
    print("top words: " + ", ".join(f"{word}={count}" for word, count in top))
    if result != dict(expected):
        print(f"RESULT_MISMATCH: got {sorted(result.items())}, expected {sorted(expected.items())}",
              file=sys.stderr)
        return 1
    print("RESULT_OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
