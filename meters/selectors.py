"""Reads for devices: their state is arithmetic over what the ledger's selectors give, never a write."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from ledger import selectors as ledger
from ledger.chaincodes.energy_math import relay_on, reserved, spendable, window_active
from ledger.db import sql_in
from ledger.keys import meter_account

from .models import Device, EnrolmentState

# --- devices --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Window:
    funder: str
    amount: int
    remaining: int
    start: datetime
    end: datetime
    active: bool


@dataclass(frozen=True)
class DeviceState:
    device: Device
    balance: int  # Wh on the device's account
    reserved: int  # Wh that belong to funded windows
    spendable: int  # Wh the device may burn now
    raw_windows: list[dict]
    relay: str  # "on" or "off"
    at: datetime

    @property
    def windows(self) -> list[Window]:
        return [
            Window(funder=w["funder"], amount=w["amount"], remaining=w["remaining"],
                   start=datetime.fromisoformat(w["start"]), end=datetime.fromisoformat(w["end"]),
                   active=window_active(w, self.at))
            for w in self.raw_windows
        ]


def _figures(balance: int, windows: list[dict], now: datetime) -> tuple[int, int, str]:
    """Reserved and spendable Wh and the relay, from a device's balance and funded windows."""
    return reserved(windows), spendable(balance, windows, now), "on" if relay_on(balance, windows, now) else "off"


def _state_of(device: Device, balance: int, windows: list[dict], now: datetime) -> DeviceState:
    held, free, relay = _figures(balance, windows, now)
    return DeviceState(device=device, balance=balance, reserved=held, spendable=free, raw_windows=windows,
                       relay=relay, at=now)


def _balance_key(device: Device) -> str:
    # A producer meter holds nothing itself; its production is the producer's.
    return meter_account(kind=device.kind, public_id=device.public_id, msp_id=device.organisation.msp_id)


def device_state(device: Device, now: datetime | None = None) -> DeviceState:
    """Balance, reserved and spendable coins, funded windows and relay from ledger data."""
    return device_states([device], now)[0]


def device_states(devices: list[Device], now: datetime | None = None) -> list[DeviceState]:
    """``device_state`` for many devices in two queries."""
    now = now or timezone.now()
    keys = {d.pk: _balance_key(d) for d in devices}
    balances = ledger.balances(list(keys.values()))
    windows = ledger.device_windows([d.public_id for d in devices])
    return [_state_of(d, balances.get(keys[d.pk], 0), windows.get(d.public_id, []), now) for d in devices]


@dataclass(frozen=True)
class LiveState:
    """What a device's listeners and its relay are told (``device_state`` without the model)."""

    public_id: str
    balance: int
    reserved: int
    spendable: int
    relay: str


def live_states(public_ids: list[str], now: datetime | None = None) -> list[LiveState]:
    """Balances, windows and relays of many devices in one query, no ORM rows: what a gateway
    batch announces after commit, thousands of devices a second."""
    if not public_ids:
        return []
    now = now or timezone.now()
    where, params = sql_in("d.public_id", public_ids)
    rows = ledger.devices_balance_and_windows(
        f"SELECT d.public_id, d.kind, d.organisation_id FROM meters_device d WHERE {where}", params)
    return [LiveState(public_id, balance, *_figures(balance, windows, now)) for public_id, balance, windows in rows]


def public_devices() -> QuerySet[Device]:
    return (Device.objects.filter(is_public=True).exclude(state=EnrolmentState.RETIRED)
            .select_related("organisation").order_by("public_id"))


def device_by_public_id(public_id: str) -> Device | None:
    return Device.objects.select_related("organisation").filter(public_id=public_id).first()


def windows_due(now: datetime) -> list[tuple[str, str]]:
    """(public id, latest ended window end) of every device with a window that has ended."""
    due = []
    for public_id, windows in ledger.device_windows().items():
        ended = [w["end"] for w in windows if datetime.fromisoformat(w["end"]) <= now]
        if ended:
            due.append((public_id, max(ended, key=datetime.fromisoformat)))
    return due
