"""The collector settings a run uses (runner.lean_gc) are undone when the last run ends."""
import gc

from dialogforge.engine.runner import GC_GEN0, lean_gc


def test_lean_gc_freezes_and_restores_nested():
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    with lean_gc():
        assert gc.get_threshold()[0] == GC_GEN0
        assert gc.get_freeze_count() > frozen_before
        with lean_gc():  # a second run at the same time
            assert gc.get_threshold()[0] == GC_GEN0
        assert gc.get_threshold()[0] == GC_GEN0  # the first run still goes on
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_lean_gc_leaves_a_disabled_collector_alone():
    before = gc.get_threshold()
    gc.set_threshold(0)
    try:
        with lean_gc():
            assert gc.get_threshold()[0] == 0
        assert gc.get_threshold()[0] == 0
    finally:
        gc.set_threshold(*before)


def test_lean_gc_restores_after_an_error():
    before = gc.get_threshold()
    try:
        with lean_gc():
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_lean_gc_keeps_a_freeze_the_program_made():
    gc.freeze()
    try:
        mine = gc.get_freeze_count()
        with lean_gc():
            pass
        assert gc.get_freeze_count() > mine // 2  # not unfrozen (a few frozen objects may be freed meanwhile)
    finally:
        gc.unfreeze()
