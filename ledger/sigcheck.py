"""Signature checks for ``ledger_verify`` in worker processes. Imports nothing from Django so
spawned workers start fast and never touch the database connection."""

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
        self._executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, items: list[tuple[bytes, bytes, bytes]]) -> list[Future]:
        size = max(1, -(-len(items) // self.workers))
        return [self._executor.submit(verify_batch, items[i : i + size]) for i in range(0, len(items), size)]

    def close(self) -> None:
        self._executor.shutdown(cancel_futures=True)
