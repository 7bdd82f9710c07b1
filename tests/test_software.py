"""@software: the descriptions in catalog/ run under runcompss and sequentially and their
results are checked against independent references (Python's sort, split and count, the ring's
formula); broken descriptions are refused naming the file and the key."""
import json
import subprocess

import pytest

from conftest import REPO, run_program
from helpers_api import api_program, describe, named, same_in_fresh_folders
from runtime.api.software import SoftwareDescriptionError, load_description

pytestmark = pytest.mark.timeout(300)
CATALOG = REPO / "catalog"


def test_every_catalog_description_is_valid():
    descriptions = sorted(p for p in CATALOG.glob("*.json") if p.name != "software.schema.json")
    assert {p.stem for p in descriptions} >= {"mpi_ring", "sort_lines", "split_and_pack",
                                              "word_stats", "python_mpi_sums"}
    for path in descriptions:
        assert load_description(str(path), path.name)["execution"]["type"]


def test_catalog_descriptions_run_and_match_references(program, tmp_path):
    ring = tmp_path / "mpi_ring"
    subprocess.run(["mpicc", str(CATALOG / "src" / "mpi_ring.c"), "-o", str(ring)], check=True,
                   timeout=120)
    path = api_program(program, f"""
        import tarfile
        from pycompss.api.software import software

        CATALOG = {str(CATALOG)!r}
        RING = {str(ring)!r}


        @software(config_file=CATALOG + "/mpi_ring.json")
        def mpi_ring(program, processes, rounds, result):
            pass


        @software(config_file=CATALOG + "/sort_lines.json")
        def sort_lines(options, source, target):
            pass


        @software(config_file=CATALOG + "/split_and_pack.json")
        def split_and_pack(lines, source, work_dir, archive):
            pass


        @software(config_file=CATALOG + "/word_stats.json")
        def word_stats(text):
            with open(text) as handle:
                words = handle.read().split()
            return {{"words": len(words), "distinct": len(set(words))}}


        @software(config_file=CATALOG + "/python_mpi_sums.json")
        def python_mpi_sums(values):
            from mpi4py import MPI
            return [MPI.COMM_WORLD.rank, MPI.COMM_WORLD.size, sum(values)]


        def read(path):
            with open(path) as handle:
                return handle.read()
    """, """
        if __name__ == "__main__":
            folder = sys.argv[1]
            text = os.path.join(folder, "text.txt")
            lines = [f"line {(i * 37) % 11} word{i % 4}" for i in range(9)]
            with open(text, "w") as handle:
                handle.write("\\n".join(lines) + "\\n")
            outputs = {name: os.path.join(folder, name)
                       for name in ("ring.txt", "sorted.txt", "parts.tar")}
            exits = [mpi_ring(RING, 2, 4, outputs["ring.txt"]),
                     sort_lines(["-r", "-n", "-k", "2,2"], text, outputs["sorted.txt"]),
                     split_and_pack(4, text, "parts", outputs["parts.tar"])]
            report("exit values", compss_wait_on(exits))
            report("stats", compss_wait_on(word_stats(text)))
            report("sums", compss_wait_on(python_mpi_sums(list(range(1, 11)))))
            for output in outputs.values():
                compss_wait_on_file(output)
            report("ring", read(outputs["ring.txt"]))
            report("sorted", read(outputs["sorted.txt"]).splitlines())
            with tarfile.open(outputs["parts.tar"]) as archive:
                members = sorted(m.name for m in archive.getmembers() if m.isfile())
                report("parts", [[m, archive.extractfile(m).read().decode()] for m in members])
            report("lines", lines)
    """)
    sequential, distributed = same_in_fresh_folders(path, tmp_path)
    results = named(distributed)
    lines = results["lines"]
    assert results["exit values"] == [0, 0, 0]
    assert results["ring"] == f"2 {4 * (1 + 2)}\n"
    assert results["sorted"] == sorted(lines, key=lambda line: int(line.split()[1]),
                                       reverse=True)
    expected_parts = ["".join(line + "\n" for line in lines[start:start + 4])
                      for start in range(0, len(lines), 4)]
    assert [content for _, content in results["parts"]] == expected_parts
    assert [name for name, _ in results["parts"]] == ["./part_aa", "./part_ab", "./part_ac"]
    words = " ".join(lines).split()
    assert results["stats"] == {"words": len(words), "distinct": len(set(words))}
    assert results["sums"] == [[0, 2, 1 + 2 + 3], [1, 2, 4 + 5 + 6]]


def test_software_above_task_and_constraints_from_the_file(program, tmp_path):
    """@software replaces the decorators below it; its parameters override @task's."""
    config = tmp_path / "count.json"
    config.write_text(json.dumps({
        "execution": {"type": "binary", "binary": "wc", "args": "-l {{source}}"},
        "parameters": {"source": "FILE_IN", "target": {"type": "FILE_OUT",
                                                       "stream": "STDOUT"}},
        "constraints": {"computing_units": 2}}))
    path = api_program(program, f"""
        from pycompss.api.software import software
        from pycompss.api.binary import binary


        @software(config_file={str(config)!r})
        @binary(binary="false")
        @task(source=FILE_OUT, returns=1)
        def count(source, target):
            pass


        if __name__ == "__main__":
            folder = sys.argv[1]
            source, target = os.path.join(folder, "in.txt"), os.path.join(folder, "out.txt")
            with open(source, "w") as handle:
                handle.write("a\\nb\\nc\\n")
            report("exit", compss_wait_on(count(source, target)))
            compss_wait_on_file(target)
            with open(target) as handle:
                report("lines", handle.read().split()[0])
            report("units", count.requirements_for(dict()).computing_units)
    """)
    sequential, distributed = same_in_fresh_folders(path, tmp_path)
    assert named(distributed) == {"exit": 0, "lines": "3", "units": 2}


@pytest.mark.parametrize("description, expected", [
    ({"execution": {"type": "shell"}},
     "bad.json: execution.type: 'shell' is not one of ['task', 'workflow', 'binary', 'mpi']"),
    ({"execution": {"type": "binary"}},
     "bad.json: execution: 'binary' is a required property"),
    ({"execution": {"type": "mpi", "processes": "many"}},
     "bad.json: execution.processes: 'many' does not match"),
    ({"execution": {"type": "task"}, "parameters": {"x": "FILE_INN"}},
     "bad.json: parameters.x: 'FILE_INN' is not one of"),
    ({"execution": {"type": "binary", "binary": "ls"}, "prolog": {"args": "-l"}},
     "bad.json: prolog: 'binary' is a required property"),
    ({"execution": {"type": "binary", "binary": "ls"},
      "container": {"engine": "podman", "image": "x"}},
     "bad.json: container.engine: 'podman' does not match"),
    ({"execution": {"type": "task", "binary": "ls"}},
     "bad.json: execution.binary: not used by type 'task'"),
    ({"exec": {}}, "bad.json: 'execution' is a required property"),
])
def test_schema_errors_name_the_file_and_the_key(tmp_path, description, expected):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(description))
    with pytest.raises(SoftwareDescriptionError) as error:
        load_description(str(path), "bad.json")
    assert expected in str(error.value)


def test_invalid_json_and_unknown_parameters_are_reported(program, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"execution": {"type": "binary",\n "binary": }}')
    with pytest.raises(SoftwareDescriptionError, match=r"broken.json:2:12: not valid JSON"):
        load_description(str(broken), "broken.json")
    (tmp_path / "typo.json").write_text(json.dumps({
        "execution": {"type": "binary", "binary": "echo", "args": "{{mesage}}"}}))
    path = api_program(program, """
        from pycompss.api.software import software


        @software(config_file="typo.json")
        def echo(message):
            pass
    """)
    run = run_program(path, mode="python", cwd=tmp_path)
    assert run.returncode != 0
    assert "typo.json: " in run.stderr and "{{mesage}}" in run.stderr, describe(run)
    assert "parameters: message" in run.stderr


def test_workflow_type_runs_the_code_as_it_is(program, tmp_path):
    (tmp_path / "flow.json").write_text(json.dumps({"execution": {"type": "workflow"}}))
    path = api_program(program, """
        from pycompss.api.software import software


        @task(returns=1)
        def double(x):
            return 2 * x


        @software(config_file="flow.json")
        def workflow(values):
            return compss_wait_on([double(v) for v in values])


        if __name__ == "__main__":
            report("workflow", workflow([1, 2, 3]))
    """)
    sequential, distributed = same_in_fresh_folders(path, tmp_path)
    assert named(distributed) == {"workflow": [2, 4, 6]}
