"""Signed meter readings: the meter signs the very proposal the ledger records.

A reading carries cumulative registers (import/export Wh, OBIS 1.8.0 / 2.8.0), a monotonic
counter and a timestamp. Its signature is the meter key's Ed25519 signature over the canonical
proposal ``<chaincode>.<function>(counter, import_wh, export_wh, timestamp)`` invoked by
``<owner msp>/<meter id>`` with idempotency key ``reading:<counter>`` at the reading's
timestamp — so a gateway only relays it: it cannot alter, invent or replay one, and a reading
delivered twice is applied once. Consumers report through ``consumer.burn``, producer meters
through ``generator.mint``. Pure: no ORM; the gateway and the simulators share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .documents import proposal_bytes
from .keys import PRODUCER_KINDS


class ReadingError(ValueError):
    """A malformed reading (kept with this reason, never applied)."""


@dataclass(frozen=True)
class Reading:
    meter: str
    counter: int
    import_wh: int
    export_wh: int
    timestamp: datetime
    signature: bytes

    def args(self) -> dict[str, Any]:
        return {"counter": self.counter, "import_wh": self.import_wh, "export_wh": self.export_wh,
                "timestamp": self.timestamp.isoformat()}

    @property
    def idempotency_key(self) -> str:
        return f"reading:{self.counter}"


def chaincode_for(device_kind: str) -> tuple[str, str]:
    return ("generator", "mint") if device_kind in PRODUCER_KINDS else ("consumer", "burn")


def reading_payload(*, device_kind: str, invoker: str, counter: int, import_wh: int, export_wh: int,
                    timestamp: datetime) -> bytes:
    """The bytes a meter signs for this reading."""
    chaincode, function = chaincode_for(device_kind)
    args = {"counter": counter, "import_wh": import_wh, "export_wh": export_wh, "timestamp": timestamp.isoformat()}
    return proposal_bytes(chaincode=chaincode, function=function, args=args, invoker=invoker,
                          idempotency_key=f"reading:{counter}", proposed_at=timestamp)


def parse_reading(message: dict[str, Any]) -> Reading:
    """Validate a decoded reading message; raises ReadingError with a clear reason."""
    import base64
    import binascii

    if not isinstance(message, dict):
        raise ReadingError("a reading is a JSON object")
    meter = message.get("meter")
    if not isinstance(meter, str) or not meter or len(meter) > 64:
        raise ReadingError("'meter' must be the meter's public id")
    values = {}
    for name in ("counter", "import_wh", "export_wh"):
        value = message.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > 2**53 - 1:
            raise ReadingError(f"{name!r} must be a non-negative integer")
        values[name] = value
    text = message.get("timestamp")
    try:
        timestamp = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        timestamp = None
    if timestamp is None or timestamp.tzinfo is None:
        raise ReadingError("'timestamp' must be an ISO 8601 time with a timezone")
    try:
        signature = base64.b64decode(str(message.get("signature", "")).encode(), validate=True)
    except (binascii.Error, ValueError):
        raise ReadingError("'signature' must be base64") from None
    if len(signature) != 64:
        raise ReadingError("'signature' must be a 64-byte Ed25519 signature")
    return Reading(meter=meter, timestamp=timestamp, signature=signature, **values)
