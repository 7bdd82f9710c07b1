"""Every app in apps/ runs with its small default input, under runcompss and sequentially, and
checks its own result against a plain numpy/Python computation (it prints RESULT_OK)."""
import pytest

from conftest import REPO, TWO_NODES, run_program

APPS = sorted(p for p in (REPO / "apps").glob("*/*.py") if p.stem == p.parent.name)


@pytest.mark.parametrize("app", APPS, ids=[p.stem for p in APPS])
@pytest.mark.parametrize("mode", ["runcompss", "python"])
def test_app_runs_and_checks_its_result(app, mode, tmp_path):
    run = run_program(app, mode=mode, cwd=tmp_path, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "RESULT_OK" in run.stdout


def test_matmul_on_two_nodes(tmp_path):
    app = REPO / "apps" / "matmul" / "matmul.py"
    run = run_program(app, resources=TWO_NODES, cwd=tmp_path, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "RESULT_OK" in run.stdout


def test_apps_exist():
    assert {p.stem for p in APPS} >= {"matmul", "wordcount", "increment", "fibonacci"}
