"""runtime/core/collector.py: the runtime's garbage-collector settings, and the way back."""
import gc

import pytest

from runtime.core import collector


@pytest.fixture
def restore_gc():
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)
    gc.unfreeze()


def test_default_thresholds_and_freeze(restore_gc, monkeypatch):
    monkeypatch.delenv(collector.THRESHOLDS_ENV, raising=False)
    assert collector.tune() == collector.DEFAULT_THRESHOLDS
    assert gc.get_threshold() == collector.DEFAULT_THRESHOLDS
    assert gc.get_freeze_count() > 0


def test_environment_restores_cpython_defaults(restore_gc, monkeypatch):
    monkeypatch.setenv(collector.THRESHOLDS_ENV, "700,10,10")
    collector.tune(freeze=False)
    assert gc.get_threshold() == (700, 10, 10)


def test_bad_setting_names_the_variable(restore_gc, monkeypatch):
    monkeypatch.setenv(collector.THRESHOLDS_ENV, "lots")
    with pytest.raises(ValueError, match=collector.THRESHOLDS_ENV):
        collector.tune(freeze=False)
