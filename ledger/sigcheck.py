"""Signature checks for ``ledger_verify`` in worker processes.

Workers are forked (fast, and unlike spawn they do not re-run the caller's ``__main__``); they
only call ``verify_batch`` on the bytes they are sent and leave through ``os._exit``, so they
never use or close the parent's database connection."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor

from .crypto import verify_signature


def verify_batch(items: list[tuple[bytes, bytes, bytes]]) -> list[bool]:
    return [verify_signature(public_key, signature, message) for public_key, signature, message in items]


class SignaturePool:
    """Splits a batch across worker processes; results come back in order."""

    def __init__(self, workers: int | None = None):
        self.workers = workers or os.cpu_count() or 1
        self._executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("fork"))

    def submit(self, items: list[tuple[bytes, bytes, bytes]]) -> list[Future]:
        return [self._executor.submit(verify_batch, items)]

    def close(self) -> None:
        self._executor.shutdown(cancel_futures=True)
