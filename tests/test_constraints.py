"""@constraint in full, dynamic constraints, GPU and core binding, @implement: on real workers.

The nodes of tests/data/resources/hetero_nodes.xml differ in every property a constraint can
name; each task reports the node it ran on (COMPSS_HOSTNAMES, set for every task as in COMPSs),
so placement is checked by where tasks really ran, not by asking the scheduler.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REPO, run_program

HETERO = REPO / "tests" / "data" / "resources" / "hetero_nodes.xml"
PLAIN, RICH = "localhost", "127.0.0.1"

pytestmark = pytest.mark.slow

_HEADER = """
    import os, time, json
    from pycompss.api.task import task
    from pycompss.api.constraint import constraint
    from pycompss.api.implement import implement
    from pycompss.api.api import compss_wait_on

    def node():
        return os.environ.get("COMPSS_HOSTNAMES", "sequential")
"""


def _run(program, body: str, resources=HETERO, **kwargs):
    path = program(_HEADER + body)
    run = run_program(path, resources=resources, **kwargs)
    assert run.returncode == 0, run.stderr
    return run.result


def test_every_property_routes_to_the_node_that_declares_it(program):
    result = _run(program, """
    @constraint(processor_architecture="arm64")
    @task(returns=1)
    def by_architecture(): return node()

    @constraint(processor_name="Fast", processor_speed=3)
    @task(returns=1)
    def by_processor(): return node()

    @constraint(memory_size=4, memory_type="HBM")
    @task(returns=1)
    def by_memory(): return node()

    @constraint(storage_size=50, storage_type="SSD")
    @task(returns=1)
    def by_storage(): return node()

    @constraint(operating_system_type="Linux", operating_system_distribution="debian")
    @task(returns=1)
    def by_distribution(): return node()

    @constraint(appSoftware="blast")             # the camelCase spelling COMPSs also accepts
    @task(returns=1)
    def by_software(): return node()

    @constraint(processors=[{"processorType": "CPU", "computingUnits": 1},
                            {"processorType": "GPU", "computingUnits": 1}])
    @task(returns=1)
    def by_gpu(): return node()

    tasks = [by_architecture, by_processor, by_memory, by_storage, by_distribution,
             by_software, by_gpu]
    futures = [[f() for _ in range(3)] for f in tasks]
    print("RESULT", json.dumps({f.__name__: sorted(set(compss_wait_on(fs)))
                                for f, fs in zip(tasks, futures)}))
    """)
    assert result == {"by_architecture": [RICH], "by_processor": [RICH], "by_memory": [RICH],
                      "by_storage": [RICH], "by_distribution": [PLAIN], "by_software": [RICH],
                      "by_gpu": [RICH]}


def test_gpu_tasks_get_distinct_devices_in_cuda_visible_devices(program, tmp_path):
    """Two GPU tasks that provably overlap in time (each waits for the other's marker) must
    see different devices; a CPU task sees none of them."""
    result = _run(program, f"""
    MARKERS = {str(tmp_path)!r}

    @constraint(processors=[{{"processorType": "GPU", "computingUnits": 1}}])
    @task(returns=1)
    def on_gpu(index):
        open(os.path.join(MARKERS, f"started{{index}}"), "w").close()
        deadline = time.time() + 30
        while time.time() < deadline and len(os.listdir(MARKERS)) < 2:
            time.sleep(0.01)
        return os.environ.get("CUDA_VISIBLE_DEVICES")

    @constraint(processors=[{{"processorType": "GPU", "computingUnits": 2}}])
    @task(returns=1)
    def on_two_gpus():
        return os.environ.get("CUDA_VISIBLE_DEVICES")

    @constraint(processor_architecture="arm64")
    @task(returns=1)
    def on_cpu():
        return os.environ.get("CUDA_VISIBLE_DEVICES")

    first, second = compss_wait_on([on_gpu(0), on_gpu(1)])
    print("RESULT", json.dumps({{"pair": sorted([first, second]),
                                "both": compss_wait_on(on_two_gpus()),
                                "cpu": compss_wait_on(on_cpu())}}))
    """)
    assert result["pair"] == ["0", "1"]
    assert sorted(result["both"].split(",")) == ["0", "1"]
    assert result["cpu"] is None


def test_computing_units_bind_that_many_cores(program):
    """Without a resources file the node is this machine: a task asking for N units runs on
    N cores of its own (sched_getaffinity), whatever N the call passes (dynamic constraint)."""
    import os
    cores = len(os.sched_getaffinity(0))
    if cores < 2:
        pytest.skip("needs at least 2 CPUs to tell 1 bound core from 2")
    result = _run(program, """
    @constraint(computing_units="units")          # a parameter name: evaluated per call
    @task(returns=1)
    def affinity(units):
        return sorted(os.sched_getaffinity(0)), int(os.environ["COMPSS_NUM_THREADS"])

    print("RESULT", json.dumps([compss_wait_on(affinity(1)), compss_wait_on(affinity(2))]))
    """, resources=None)
    (one_core, one_threads), (two_cores, two_threads) = result
    assert len(one_core) == 1 and one_threads == 1
    assert len(two_cores) == 2 and two_threads == 2


def test_dynamic_constraint_from_parameter_and_environment(program, monkeypatch):
    monkeypatch.setenv("WANTED_ARCH", "arm64")
    result = _run(program, """
    @constraint(processor_architecture="arch")
    @task(returns=1)
    def where(arch): return node()

    @constraint(processor_architecture="${WANTED_ARCH}")
    @task(returns=1)
    def from_environment(): return node()

    print("RESULT", json.dumps([compss_wait_on(where("amd64")), compss_wait_on(where("arm64")),
                                compss_wait_on(from_environment())]))
    """)
    assert result == [PLAIN, RICH, RICH]


def test_constraint_no_node_meets_fails_at_once_with_the_largest_node(program):
    path = program(_HEADER + """
    @constraint(processors=[{"processorType": "GPU", "computingUnits": 4}])
    @task(returns=1)
    def greedy(): return 1

    print("RESULT", json.dumps(compss_wait_on(greedy())))
    """)
    run = run_program(path, resources=HETERO, timeout=60)
    assert run.returncode != 0
    assert "greedy" in run.stderr and "GPU x4" in run.stderr and "can never be met" in run.stderr


def test_unknown_constraint_key_is_named(program):
    path = program(_HEADER + """
    @constraint(computing_unit=2)
    @task(returns=1)
    def typo(): return 1
    """)
    run = run_program(path, mode="python")
    assert run.returncode != 0
    assert "unknown key 'computing_unit'" in run.stderr and str(path) in run.stderr


def test_implement_picks_the_variant_a_node_can_run(program):
    """`cube` needs an architecture no node has, so every call must run its @implement
    variant (on the arm64 node); `twice` fits anywhere, so the task itself runs."""
    result = _run(program, """
    @constraint(processor_architecture="riscv")
    @task(returns=1)
    def cube(x): return ("original", x ** 3, node())

    @implement(source_class=__name__, method="cube")
    @constraint(processor_architecture="arm64")
    @task(returns=1)
    def cube_on_arm(x): return ("variant", x * x * x, node())

    @task(returns=1)
    def twice(x): return ("original", 2 * x, node())

    @implement(source_class=os.path.splitext(os.path.basename(__file__))[0], method="twice")
    @task(returns=1)
    def twice_elsewhere(x): return ("variant", x + x, node())

    print("RESULT", json.dumps({"cube": compss_wait_on([cube(i) for i in range(4)]),
                                "twice": compss_wait_on([twice(i) for i in range(3)])}))
    """)
    assert result["cube"] == [["variant", i ** 3, RICH] for i in range(4)]
    assert [kind for kind, _, _ in result["twice"]] == ["original"] * 3
    assert [value for _, value, _ in result["twice"]] == [0, 2, 4]


def test_implement_runs_the_task_itself_sequentially(program):
    path = program(_HEADER + """
    @task(returns=1)
    def add(a, b): return a + b

    @implement(source_class=__name__, method="add")
    @constraint(computing_units=1)
    @task(returns=1)
    def add_other(a, b): return b + a

    print("RESULT", json.dumps(compss_wait_on(add(2, 3))))
    """)
    run = run_program(path, mode="python")
    assert run.returncode == 0, run.stderr
    assert run.result == 5


def test_api_names_are_importable_from_both_packages():
    from pycompss.api.implement import implement as alias
    from runtime.api import implement
    assert alias is implement
    assert Path(REPO / "pycompss" / "api" / "implement.py").exists()
