"""A simulated smart meter: cumulative registers, a monotonic counter, a relay, and its own
Ed25519 key. Pure (no ORM, no network): ``simulate_meters``, the embedded fleet, the simulator
pages (through ``iot_gateway.fleet.simulated_meter``), the benchmarks and the tests all drive
it the same way: ``next_reading(now)`` returns the signed message a real meter would publish
on ``gridcoin/v1/meters/<id>/readings`` (``reading_publication``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.crypto import b64
from ledger.keys import PRODUCER_KINDS
from ledger.readings import reading_payload

from .mqtt import meter_topic

WMS_PER_WH = 3_600_000  # watt-milliseconds in a watt-hour: registers advance in whole Wh, exactly

# Typical power by kind (W): what a simulated meter draws (consumers) or produces (producers).
DEFAULT_POWER_W = {
    "household_meter": 600,
    "street_light": 120,
    "stadium_lights": 40_000,
    "market_square": 2_500,
    "producer_meter": 5_000,
}


def relay_from_payload(payload: bytes | str) -> str | None:
    """Decode a relay command: ``on`` / ``off`` or JSON ``{"relay": "on"}``; None if neither."""
    text = payload.decode(errors="replace") if isinstance(payload, bytes) else payload
    text = text.strip()
    if text.startswith("{"):
        try:
            text = str(json.loads(text).get("relay", ""))
        except (ValueError, AttributeError):
            return None
    text = text.lower()
    return text if text in ("on", "off") else None


def reading_publication(reading: dict[str, Any]) -> tuple[str, bytes]:
    """The MQTT topic and payload a meter publishes ``reading`` (a signed reading message) as."""
    return meter_topic(reading["meter"], "readings"), json.dumps(reading).encode()


@dataclass
class SimulatedMeter:
    public_id: str
    kind: str
    invoker: str  # "<owner msp>/<public id>": the ledger identity the meter signs as
    signer: Ed25519PrivateKey
    power_w: int | None = None  # drawn (consumers, only while the relay is on) or produced (producers)
    counter: int = 0  # of the last reading sent
    import_wh: int = 0
    export_wh: int = 0
    relay: str = "on"
    last_at: datetime | None = None
    _import_wms: int = field(default=0, repr=False)  # energy below one Wh carried to the next reading
    _export_wms: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if self.power_w is None:
            self.power_w = DEFAULT_POWER_W.get(self.kind, 500)

    @property
    def is_producer(self) -> bool:
        return self.kind in PRODUCER_KINDS

    @property
    def consuming(self) -> bool:
        return not self.is_producer and self.relay == "on"

    def relay_command(self, payload: bytes | str) -> bool:
        """Obey a relay command; returns whether it was understood."""
        relay = relay_from_payload(payload)
        if relay is None:
            return False
        self.relay = relay
        return True

    def advance(self, now: datetime) -> None:
        """Run the registers up to ``now``: a consumer's import register grows only while its
        relay is on; a producer's export register grows all the time."""
        if self.last_at is not None and now > self.last_at:
            elapsed_ms = int((now - self.last_at).total_seconds() * 1000)
            if self.is_producer:
                self._export_wms += self.power_w * elapsed_ms
                wh, self._export_wms = divmod(self._export_wms, WMS_PER_WH)
                self.export_wh += wh
            elif self.consuming:
                self._import_wms += self.power_w * elapsed_ms
                wh, self._import_wms = divmod(self._import_wms, WMS_PER_WH)
                self.import_wh += wh
        if self.last_at is None or now > self.last_at:
            self.last_at = now

    def add_energy(self, *, import_wh: int = 0, export_wh: int = 0) -> None:
        """Step the registers by hand (the simulator pages: a click is so many Wh)."""
        if import_wh < 0 or export_wh < 0:
            raise ValueError("cumulative registers never go backwards")
        if import_wh and not self.consuming:
            import_wh = 0  # relay off: nothing flows
        self.import_wh += import_wh
        self.export_wh += export_wh

    def reading(self, *, counter: int, import_wh: int, export_wh: int, timestamp: datetime) -> dict[str, Any]:
        """A signed reading message with exactly these figures (tests forge and replay with it)."""
        payload = reading_payload(device_kind=self.kind, invoker=self.invoker, counter=counter, import_wh=import_wh,
                                  export_wh=export_wh, timestamp=timestamp)
        return {"meter": self.public_id, "counter": counter, "import_wh": import_wh, "export_wh": export_wh,
                "timestamp": timestamp.isoformat(), "signature": b64(self.signer.sign(payload))}

    def next_reading(self, now: datetime) -> dict[str, Any]:
        """Advance to ``now`` and return the next signed reading (counter + 1)."""
        self.advance(now)
        self.counter += 1
        return self.reading(counter=self.counter, import_wh=self.import_wh, export_wh=self.export_wh,
                            timestamp=self.last_at or now)
