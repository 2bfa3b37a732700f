"""Run ``ledger_verify`` (inside the database) and the standalone verifier (on an export of that
same database) after the same edit, and compare what they say."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.db import transaction

from ledger.export import export_ledger
from ledger.verify import Report, trusted_orderer_keys, verify_chain
from tests.ledger.tampering import superuser

_runs = itertools.count()


def export_and_verify(directory: Path, *, orderer_keys: list[str] | None = None, quorum: int | None = None):
    import verifier

    export_ledger(directory, blocks_per_file=2)
    return verifier.verify_export(directory, orderer_keys=orderer_keys or sorted(trusted_orderer_keys()),
                                  quorum=quorum, workers=1)


def both_after(mutate: Callable[[], Any], pinned: list[str]) -> tuple[Report, Any]:
    """Apply ``mutate`` as a superuser in a savepoint, run both verifiers, roll back."""
    with transaction.atomic():
        with superuser():
            mutate()
        inside = verify_chain(workers=0)
        with tempfile.TemporaryDirectory(prefix="gridcoin-export-") as tmp:
            outside = export_and_verify(Path(tmp) / f"run-{next(_runs)}", orderer_keys=pinned)
        transaction.set_rollback(True)
    return inside, outside


def assert_both_catch(mutate: Callable[[], Any], pinned: list[str], label: str) -> None:
    inside, outside = both_after(mutate, pinned)
    assert not inside.ok, f"ledger_verify missed: {label}"
    assert not outside.ok, f"the standalone verifier missed what ledger_verify caught: {label}: {inside.problems[0]}"
    first, seen = inside.problems[0], outside.problems[0]
    if first.block is not None and seen.block is not None:
        assert seen.block == first.block, f"{label}: ledger_verify says {first}, the verifier {seen}"
