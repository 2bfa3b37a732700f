"""Celery beat entries for reconciliation, one per statements inbox: ``<dir>/stripe/`` for the
processor and ``<dir>/bank/<bank msp id>/`` per bank. Pure (no ORM), so ``gridcoin/celery.py``
can build the schedule when beat starts; an inbox added later needs a beat restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

INBOX_TASK = "payments.tasks.reconcile_statements_inbox"


def inbox_sources(statements_dir: Path) -> list[tuple[str, str]]:
    """(source, scope) of every inbox folder present."""
    sources: list[tuple[str, str]] = []
    if (statements_dir / "stripe").is_dir():
        sources.append(("stripe", ""))
    banks = statements_dir / "bank"
    if banks.is_dir():
        sources += [("bank", p.name) for p in sorted(banks.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    return sources


def reconciliation_beat_schedule(statements_dir: Path, at: str) -> dict[str, dict[str, Any]]:
    from celery.schedules import crontab

    hour, _, minute = at.partition(":")
    return {
        f"reconcile-{source}{'-' + scope if scope else ''}": {
            "task": INBOX_TASK,
            "schedule": crontab(hour=int(hour), minute=int(minute or 0)),
            "kwargs": {"source": source, "scope": scope},
        }
        for source, scope in inbox_sources(statements_dir)
    }
