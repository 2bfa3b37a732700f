"""The write path of reconciliation: storing a statement as a run, and executing a run in steps.

A run moves ``pending → loading → applying → done`` (or ``failed`` when the statement is
refused), each step claimed by compare-and-swap on ``state`` under the executing task's
token, so Celery delivering the task twice, or a worker dying mid-run, resumes the run instead
of repeating it. Loading ends by matching: the staged lines are stored already sorted in the
transaction that moves the run on (the staging table lives only on the loading connection, so
a run never waits between the two; a run left in ``matching`` by an earlier version is read
again). Only the last step moves value: each line missing on the ledger is credited through
``payment_credit``, with the same claim and idempotency key as the webhook that never
came, so a late webhook, a second run or a second statement finds it credited."""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from ledger.models import OrgType
from ledger.selectors import organisation_with_msp_id

from ..credits import payment_credit
from .formats import BANK, STRIPE, statement_reader
from .loading import lines_clear, lines_stage, staging_drop
from .matching import lines_match, outcome_counts
from .models import Outcome, ReconciliationLine, ReconciliationRun, RunState
from .statements import StatementError

logger = logging.getLogger(__name__)
SOURCES = (BANK, STRIPE)
# Progress of a whole run in thousandths: reading and loading the statement is most of the work.
LOAD_SHARE, MATCH_SHARE = 800, 850
Progress = Callable[[int, int, str], None]  # (current, total, description), celery-progress's shape


class StatementRefused(ValueError):
    """The upload cannot become a run (too big, unknown source); the message is for the user."""


def statements_dir() -> Path:
    return Path(settings.GRIDCOIN_STATEMENTS_DIR)


def _digest_copy(stream: BinaryIO, target: Path, limit: int) -> str:
    digest = hashlib.sha256()
    size = 0
    with target.open("wb") as out:
        while chunk := stream.read(1024 * 1024):
            size += len(chunk)
            if size > limit:
                raise StatementRefused(f"the statement is larger than {limit:,} bytes")
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _file_digest(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


@dataclass(frozen=True)
class RunCreated:
    run: ReconciliationRun
    created: bool  # False: this statement was reconciled before (``run`` is that run)


def _check_source(source: str, scope: str) -> None:
    if source not in SOURCES:
        raise StatementRefused(f"unknown source {source!r}: bank (camt.053) or stripe (balance report)")
    if source == BANK:
        bank = organisation_with_msp_id(scope) if scope else None
        if bank is None or bank.org_type != OrgType.BANK:
            raise StatementRefused(f"a bank statement needs the bank's organisation id, not {scope!r}")
    elif scope:
        raise StatementRefused("a Stripe report has no bank scope")


def reconciliation_run_create(*, source: str, scope: str = "", stream: BinaryIO | None = None,
                              path: Path | None = None, file_name: str = "", processor: str = "",
                              created_by=None, rerun: bool = False) -> RunCreated:  # type: ignore[no-untyped-def]
    """Store a statement (an upload's ``stream``, copied into the statements directory, or a
    file already there, ``path``) as a pending run. The same file for the same source finds
    its first run unless ``rerun`` (a new run that must change nothing already applied)."""
    _check_source(source, scope)
    if (stream is None) == (path is None):
        raise ValueError("give the statement as a stream or as a path")
    if stream is not None:
        uploads = statements_dir() / "uploads"
        uploads.mkdir(parents=True, exist_ok=True)
        partial = uploads / f".partial-{uuid.uuid4().hex}"
        try:
            digest = _digest_copy(stream, partial, settings.GRIDCOIN_STATEMENT_MAX_BYTES)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        suffix = ".xml" if source == BANK else ".csv"
        stored = uploads / f"{source}-{scope or 'stripe'}-{digest}{suffix}"
        os.replace(partial, stored)
    else:
        assert path is not None
        stored = path.resolve()
        digest = _file_digest(stored)
    original = ReconciliationRun.objects.filter(source=source, scope=scope, digest=digest, rerun_of=None).first()
    if original is not None and not rerun:
        return RunCreated(original, False)
    try:
        with transaction.atomic():
            run = ReconciliationRun.objects.create(
                source=source, scope=scope, processor=processor, digest=digest, path=str(stored),
                file_name=(file_name or stored.name)[:255], created_by=created_by, rerun_of=original)
    except IntegrityError:  # the same statement stored by a concurrent upload a moment ago
        return RunCreated(ReconciliationRun.objects.get(source=source, scope=scope, digest=digest, rerun_of=None),
                          False)
    return RunCreated(run, True)


def reconciliation_inbox_collect(*, source: str, scope: str = "") -> list[int]:
    """The runs to execute for the statements in ``<statements dir>/<source>[/<bank>]/``: each
    file becomes a run once (by digest); runs not finished yet are returned too."""
    folder = statements_dir() / source / scope if scope else statements_dir() / source
    pending: list[int] = []
    for path in sorted(p for p in folder.glob("*") if p.is_file() and not p.name.startswith(".")):
        made = reconciliation_run_create(source=source, scope=scope, path=path)
        if made.run.in_flight:
            pending.append(made.run.pk)
    return pending


def reconciliation_run_progress(*, run_id: int, current: int, total: int, label: str) -> None:
    """Record progress on the run row (autocommit: visible at once to the page that polls)."""
    ReconciliationRun.objects.filter(pk=run_id).update(progress_current=current, progress_total=total,
                                                       progress_label=label[:200])


def _advance(run: ReconciliationRun, old: str, new: str, **fields) -> bool:  # type: ignore[no-untyped-def]
    changed = ReconciliationRun.objects.filter(pk=run.pk, state=old, task_id=run.task_id).update(state=new, **fields)
    if changed:
        run.state = new
        for name, value in fields.items():
            setattr(run, name, value)
    return bool(changed)


IN_FLIGHT = (RunState.LOADING, RunState.MATCHING, RunState.APPLYING)


def reconciliation_run_execute(*, run_id: int, token: str = "", progress: Progress | None = None,
                               take_over_after: timedelta | None = None) -> ReconciliationRun:
    """Execute (or resume, under the same ``token``) a run to its end; returns the run. A run
    another token started more than ``take_over_after`` ago is taken over: its task is taken
    for lost (a worker that died without Celery redelivering it); every step resumes safely."""
    token = token or uuid.uuid4().hex
    report: Progress = progress or (lambda current, total, label: None)
    now = timezone.now()
    claimed = ReconciliationRun.objects.filter(pk=run_id, state=RunState.PENDING).update(
        state=RunState.LOADING, task_id=token, started_at=now)
    if not claimed and take_over_after is not None:
        claimed = ReconciliationRun.objects.filter(pk=run_id, state__in=IN_FLIGHT,
                                                   started_at__lt=now - take_over_after).update(
            task_id=token, started_at=now)
    run = ReconciliationRun.objects.get(pk=run_id)
    if not claimed and not (run.in_flight and run.task_id == token):
        return run  # finished already, or another worker has it
    if run.state == RunState.MATCHING:  # left by a version that stored lines before sorting them
        _advance(run, RunState.MATCHING, RunState.LOADING)
    if run.state == RunState.LOADING:
        _load(run, report)
    if run.state == RunState.APPLYING:
        _apply_missing(run, report)
        _advance(run, RunState.APPLYING, RunState.DONE, counts=outcome_counts(run.pk), finished_at=timezone.now())
        report(1000, 1000, "done")
    return run


def _load(run: ReconciliationRun, report: Progress) -> None:
    path = Path(run.path)
    lines_clear(run.pk)  # nothing should be there (lines are stored at the end, at once): safety
    try:
        try:
            size = max(path.stat().st_size, 1)
            with path.open("rb") as fh:
                reader = statement_reader(run.source, fh, max_bytes=settings.GRIDCOIN_STATEMENT_MAX_BYTES)

                def loaded(count: int) -> None:
                    done = min(LOAD_SHARE, LOAD_SHARE * reader.bytes_read // size)
                    report(done, 1000, f"reading the statement: {count:,} lines")

                lines_stage(reader.lines(), after_chunk=loaded)
        except (StatementError, OSError) as exc:
            message = str(exc) if isinstance(exc, StatementError) else f"cannot read the statement: {exc.strerror}"
            _advance(run, RunState.LOADING, RunState.FAILED, error=message, finished_at=timezone.now(), counts={})
            report(1000, 1000, "refused: " + message)
            logger.warning("reconciliation run %s refused: %s", run.pk, message)
            return
        header = reader.header
        report(LOAD_SHARE, 1000, "matching against the ledger")
        with transaction.atomic():
            # The claim first: a run taken over meanwhile is left to the worker that holds it.
            if _advance(run, RunState.LOADING, RunState.APPLYING, statement_id=header.statement_id[:255],
                        period_start=header.period_start, period_end=header.period_end):
                lines_match(run_id=run.pk, provider=run.source, scope=run.scope, since=header.period_start,
                            until=header.period_end)
    finally:
        staging_drop()


def _chaincode_for(payer: str) -> str:
    """The seller chaincode a statement line pays for, when the statement does not say: who pays
    tells it (a household buys retail, the utility buys wholesale)."""
    org = organisation_with_msp_id(payer) if payer else None
    if org is not None and org.org_type == OrgType.UTILITY:
        return "wholesale-seller"
    return "retail-seller"


def _apply_missing(run: ReconciliationRun, report: Progress) -> None:
    missing = ReconciliationLine.objects.filter(run=run, outcome=Outcome.MISSING, tx_hash__isnull=True)
    total = missing.count()
    origin = f"statement:{run.statement_id or run.digest[:16]}"
    report(MATCH_SHARE, 1000, f"applying payments missing on the ledger: 0 of {total:,}")
    for done, line_id in enumerate(list(missing.order_by("line_no").values_list("id", flat=True)), start=1):
        _apply_line(run, line_id, origin)
        if done % 25 == 0 or done == total:
            report(MATCH_SHARE + (1000 - MATCH_SHARE) * done // total, 1000,
                   f"applying payments missing on the ledger: {done:,} of {total:,}")


def _apply_line(run: ReconciliationRun, line_id: int, origin: str) -> None:
    with transaction.atomic():
        line = ReconciliationLine.objects.select_for_update().get(pk=line_id)
        if line.outcome != Outcome.MISSING or line.tx_hash is not None:
            return  # applied by an earlier attempt of this run
        created: datetime = line.booked_at or run.period_start or timezone.now()
        outcome = payment_credit(provider=run.source, scope=run.scope, payment_id=line.reference,
                                 chaincode=line.chaincode or _chaincode_for(line.payer), payer=line.payer,
                                 payee=line.payee, amount=line.amount, currency=line.currency, created=created,
                                 origin=origin, processor=line.processor or run.processor)
        line.payment_id = outcome.payment
        line.tx_hash = outcome.tx_hash
        if outcome.status == "applied":
            line.reason = f"applied from the statement ({origin})"
        elif outcome.status == "duplicate":  # the webhook arrived between matching and now
            line.outcome, line.reason = Outcome.MATCHED, "credited by its notification meanwhile"
        elif outcome.status == "conflict":
            line.outcome, line.reason = Outcome.MISMATCH, outcome.reason
        else:
            line.outcome, line.reason = Outcome.REJECTED, outcome.reason
        line.save(update_fields=["payment", "tx_hash", "outcome", "reason"])

