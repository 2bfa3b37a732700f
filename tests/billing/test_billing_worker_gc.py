"""Celery's pool processes (the billing tasks among others) put what they have loaded out of the
garbage collector's reach and collect young objects less often: with Python's defaults the
collector took about a fifth of a station slot's bill (bench/README.md, issue 15)."""

from __future__ import annotations

import gc
import weakref

from celery.signals import worker_process_init

from gridcoin import celery


def test_a_pool_process_freezes_what_it_has_loaded_and_collects_young_objects_less_often():
    receivers = [r() if isinstance(r, weakref.ref) else r for _, r in worker_process_init.receivers]
    assert celery.settle_worker_gc in receivers
    threshold = gc.get_threshold()
    try:
        celery.settle_worker_gc()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == celery.WORKER_GC_THRESHOLD
        assert celery.WORKER_GC_THRESHOLD[0] >= 10 * threshold[0]
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
