"""The gateway's write path: signed meter readings in, ``consumer.burn`` / ``generator.mint``
out, every reading kept in the audit table with its outcome; meters' connection states.

A batch of readings from many meters is one database transaction: each reading's invocation
runs in its own savepoint inside it (a refusal or a replay rolls back only that reading), and
the audit rows go in with one bulk insert. The MQTT gateway acknowledges a batch's messages
only after this commit, so a gateway killed mid-batch gets them again and the ledger's
idempotency keys (``reading:<counter>``) turn re-application into a replay.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from ledger import services as ledger
from ledger.batch import Request, invoke_batch
from ledger.db import bound_cursor, keyed_lookups, sql_in
from ledger.models import Identity
from ledger.readings import Reading, ReadingError, chaincode_for, parse_reading
from ledger.selectors import IDENTITY_WIDTH, IdentityColumns, devices_with_identities
from meters import live
from meters.models import Device, EnrolmentState

from .models import MeterReading, MeterStatus, ReadingStatus, ReceivedVia

logger = logging.getLogger(__name__)

MAX_BATCH = 5_000


@dataclass(frozen=True)
class IngestOutcome:
    meter: str
    counter: int | None
    status: str  # applied | replayed | rejected
    reason: str = ""
    tx_hash: str = ""
    result: dict[str, Any] | None = None  # the contract's result (burned, minted, relay, ...)

    @property
    def ok(self) -> bool:
        return self.status != ReadingStatus.REJECTED

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _claimed_meter(message: Any) -> str:
    meter = message.get("meter") if isinstance(message, dict) else None
    return meter[:64] if isinstance(meter, str) else ""


@dataclass(frozen=True)
class _Meter:
    """What a batch needs of a device: the audit row's key, how it reports, and its identity."""

    pk: int
    public_id: str
    kind: str
    is_retired: bool
    identity: Identity


def _load_devices(public_ids: set[str]) -> dict[str, _Meter]:
    """The batch's devices with their identities in one query (no ORM model per row: at
    thousands of readings a second the ORM's rows cost more than the query)."""
    if not public_ids:
        return {}
    where, params = sql_in("d.public_id", sorted(public_ids))
    rows = devices_with_identities(f"SELECT d.id, d.public_id, d.kind, d.state, d.identity_id FROM meters_device d "
                                   f"WHERE {where}", params)
    if len(_known_meters) > KNOWN_METERS:
        _known_meters.clear()
    out = {}
    for row in rows:
        meter = _known_meters.get(row)
        if meter is None:  # new, or any column changed (a revocation, a new key, a retirement)
            pk, public_id, kind, state, _ = row[:-IDENTITY_WIDTH]
            identity = IdentityColumns(*row[-IDENTITY_WIDTH:]).identity()
            meter = _known_meters[row] = _Meter(pk, public_id, kind, state == EnrolmentState.RETIRED, identity)
        out[meter.public_id] = meter
    return out


# Every batch reads its devices afresh; a row identical to one read before reuses what was
# built from it (building the models costs more than the query). The whole row is the key, so
# a revoked identity or a retired device is never answered from here. About 1 KB each: a
# fleet larger than the bound is served without it rather than growing the worker.
KNOWN_METERS = 20_000
_known_meters: dict[tuple, _Meter] = {}


def _outcome(reading: Reading, result) -> IngestOutcome:
    if isinstance(result, ledger.LedgerError):  # e.g. the counter was already used for other registers
        return IngestOutcome(reading.meter, reading.counter, ReadingStatus.REJECTED, str(result))
    if result.replayed:
        reason = "delivered again: already " + ("applied" if result.ok else f"refused ({result.reason})")
        return IngestOutcome(reading.meter, reading.counter, ReadingStatus.REPLAYED, reason, result.tx_hash,
                             result.result)
    if not result.ok:
        return IngestOutcome(reading.meter, reading.counter, ReadingStatus.REJECTED, result.reason, result.tx_hash)
    return IngestOutcome(reading.meter, reading.counter, ReadingStatus.APPLIED, "", result.tx_hash, result.result)


def readings_ingest(messages: list[dict], *, received_via: str,
                    undecodable: Sequence[tuple[str, str]] = ()) -> list[IngestOutcome]:
    """Apply a batch of decoded reading messages (from any number of meters) and return one
    outcome per message, in order. A malformed message is rejected with its reason and never
    aborts the batch; only a database failure does (then nothing of the batch is kept and the
    caller delivers it again). Within the batch each meter's readings are applied in counter
    order. After commit every device with an applied reading is announced once.

    ``undecodable`` lists (meter id, reason) of payloads that were not even JSON: they are
    kept as rejected readings in the same transaction (no outcome is returned for them)."""
    if received_via not in ReceivedVia.values:
        raise ValueError(f"received_via must be one of {ReceivedVia.values}")
    if len(messages) > MAX_BATCH:
        raise ValueError(f"at most {MAX_BATCH} readings per batch")
    received_at = timezone.now()
    outcomes: list[IngestOutcome | None] = [None] * len(messages)
    readings: list[tuple[int, Reading]] = []
    for n, message in enumerate(messages):
        try:
            readings.append((n, parse_reading(message)))
        except ReadingError as exc:
            outcomes[n] = IngestOutcome(_claimed_meter(message), None, ReadingStatus.REJECTED, str(exc))
    readings.sort(key=lambda item: (item[1].meter, item[1].counter, item[0]))
    latest: dict[str, Reading] = {}

    with keyed_lookups():  # one transaction
        devices = _load_devices({r.meter for _, r in readings})
        requests: list[tuple[int, Reading, Request]] = []
        for n, reading in readings:
            device = devices.get(reading.meter)
            if device is None:
                outcomes[n] = IngestOutcome(reading.meter, reading.counter, ReadingStatus.REJECTED,
                                            f"no device {reading.meter!r} is registered")
            elif device.is_retired:
                outcomes[n] = IngestOutcome(reading.meter, reading.counter, ReadingStatus.REJECTED,
                                            f"device {reading.meter} is retired")
            else:
                chaincode, function = chaincode_for(device.kind)
                requests.append((n, reading, Request(
                    chaincode=chaincode, function=function, args=reading.args(), invoker=device.identity,
                    idempotency_key=reading.idempotency_key, signature=reading.signature,
                    proposed_at=reading.timestamp)))
        # The whole batch through the ledger at once: the same outcome per reading as one
        # invoke each, with a handful of statements for all of them.
        for (n, reading, _), result in zip(requests, invoke_batch([r for _, _, r in requests]), strict=True):
            outcome = _outcome(reading, result)
            if outcome.status == ReadingStatus.APPLIED:
                latest[reading.meter] = reading
            outcomes[n] = outcome
        parsed = dict(readings)
        rows = [_audit_row(outcome, parsed.get(n), devices) for n, outcome in enumerate(outcomes)]
        if undecodable:
            known = _load_devices({meter for meter, _ in undecodable} - set(devices))
            rows += [(_device_pk(meter, devices, known), meter[:64], None, None, None, None, ReadingStatus.REJECTED,
                      reason, "") for meter, reason in undecodable]
        _audit_insert(rows, received_via, received_at)
        if latest:
            transaction.on_commit(lambda: _announce(latest, outcomes))
    return outcomes  # type: ignore[return-value]


AuditRow = tuple[int | None, str, int | None, int | None, int | None, datetime | None, str, str, str]


def _device_pk(meter: str, *found: dict[str, _Meter]) -> int | None:
    for devices in found:
        if meter in devices:
            return devices[meter].pk
    return None


def _audit_row(outcome: IngestOutcome, reading: Reading | None, devices: dict[str, _Meter]) -> AuditRow:
    return (_device_pk(outcome.meter, devices), outcome.meter, reading.counter if reading else None,
            reading.import_wh if reading else None, reading.export_wh if reading else None,
            reading.timestamp if reading else None, outcome.status, outcome.reason, outcome.tx_hash)


def _audit_insert(rows: list[AuditRow], received_via: str, received_at: datetime) -> None:
    """Every reading's audit row: one COPY on PostgreSQL."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        MeterReading.objects.bulk_create(
            MeterReading(device_id=r[0], meter=r[1], counter=r[2], import_wh=r[3], export_wh=r[4], timestamp=r[5],
                         status=r[6], reason=r[7], tx_hash=r[8], received_via=received_via, received_at=received_at)
            for r in rows)
        return
    with bound_cursor() as cur, cur.copy(
            "COPY iot_gateway_meterreading (device_id, meter, counter, import_wh, export_wh, timestamp, status, "
            "reason, tx_hash, received_via, received_at) FROM STDIN") as copy:
        for row in rows:
            copy.write_row((*row, received_via, received_at))


def _announce(latest: dict[str, Reading], outcomes: list[IngestOutcome | None]) -> None:
    totals: dict[str, dict[str, int]] = {}
    for o in outcomes:
        if o is not None and o.status == ReadingStatus.APPLIED and o.result:
            sums = totals.setdefault(o.meter, {})
            for name in ("burned", "shortfall", "wh"):
                if isinstance(o.result.get(name), int):
                    sums[name] = sums.get(name, 0) + o.result[name]
    consumption = {
        public_id: {"counter": reading.counter, "import_wh": reading.import_wh, "export_wh": reading.export_wh,
                    "timestamp": reading.timestamp.isoformat(), **totals.get(public_id, {})}
        for public_id, reading in latest.items()
    }
    try:
        live.devices_state_changed(consumption)
    except Exception:  # best effort: the ledger is the truth, pages resync on reconnect
        logger.warning("could not announce the state of %d devices", len(consumption), exc_info=True)


STATUS_VALUES = {"online": True, "offline": False}


def meter_statuses_record(statuses: dict[str, bool], *, changed_at: datetime | None = None) -> int:
    """Record meters' connection states ({public id: online}); unknown meters are ignored.
    Returns how many devices were recorded."""
    if not statuses:
        return 0
    changed_at = changed_at or timezone.now()
    with transaction.atomic():
        ids = dict(Device.objects.filter(public_id__in=statuses).values_list("public_id", "pk"))
        MeterStatus.objects.bulk_create(
            [MeterStatus(device_id=pk, online=statuses[public_id], changed_at=changed_at)
             for public_id, pk in ids.items()],
            update_conflicts=True, unique_fields=["device"], update_fields=["online", "changed_at"],
        )
    return len(ids)
