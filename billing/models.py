"""Off-chain bookkeeping of the billing tasks; the ledger holds every unit and bill. Rows here
only say how far the tasks got, so a rerun knows what is left and never repeats an invocation
needlessly: losing them costs re-invocations the chaincode answers "unchanged", nothing else."""

from __future__ import annotations

from django.db import models


class StationProgress(models.Model):
    """How far a station's units are recorded in sequence, and which meter readings the tasks
    have looked at (to find late ones, whose slots are already recorded)."""

    station = models.CharField(max_length=64, unique=True)
    # The end of the last slot whose units were recorded in sequence; the next pass starts there.
    units_through = models.DateTimeField(null=True, blank=True)
    # The highest iot_gateway.MeterReading id taken into account.
    readings_seen = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.station} through {self.units_through}"


class SlotRecord(models.Model):
    """One station's slot: the units recorded on the ledger (digests of what was sent), whether
    late readings changed them since (``stale``), and the inputs its bill rests on."""

    station = models.CharField(max_length=64)
    start = models.DateTimeField()
    # sha256 of the recorded entries with their readings, and of just (household, unit) pairs.
    units_digest = models.CharField(max_length=64, blank=True)
    values_digest = models.CharField(max_length=64, blank=True)
    units_version = models.PositiveIntegerField(default=0, help_text="initStationUnits invocations accepted")
    units_tx = models.CharField(max_length=64, blank=True)
    total_wh = models.BigIntegerField(default=0)
    stale = models.BooleanField(default=False, help_text="late readings arrived: record the units again")
    # sha256 of (frequency, values_digest) the current bill rests on; empty: never billed.
    billed_digest = models.CharField(max_length=64, blank=True)
    bill_version = models.PositiveIntegerField(default=0, help_text="initStationBill invocations accepted")
    bill_tx = models.CharField(max_length=64, blank=True)
    billed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["station", "start"], name="billing_slot_unique")]
        indexes = [models.Index(fields=["station", "stale", "start"], name="billing_slot_stale")]

    def __str__(self) -> str:
        return f"{self.station} {self.start.isoformat()}"
