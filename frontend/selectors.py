"""Reads for the pages: what the signed-in user holds, device readings, the map, stickers."""

from __future__ import annotations

from dataclasses import dataclass, field

from accounts.models import Membership
from ledger.models import Account, Organisation


@dataclass
class OrganisationSummary:
    organisation: Organisation
    role: str
    accounts: list[Account] = field(default_factory=list)


def organisations_with_accounts(user) -> list[OrganisationSummary]:
    """The user's organisations (with their role) and each organisation's own accounts."""
    if not user.is_authenticated:
        return []
    memberships = Membership.objects.filter(user=user).select_related("organisation").order_by("id")
    summaries = {m.organisation_id: OrganisationSummary(m.organisation, m.role) for m in memberships}
    accounts = (
        Account.objects.filter(organisation_id__in=summaries)
        .exclude(kind="issuance")
        .select_related("asset")
        .order_by("asset_id", "key")
    )
    for account in accounts:
        summaries[account.organisation_id].accounts.append(account)
    return list(summaries.values())


# --- devices: readings, map, stickers ----------------------------------------------------------

@dataclass(frozen=True)
class ReadingRow:
    at: object  # datetime the meter stamped the reading
    counter: int | None
    register_wh: int | None  # the cumulative register the reading carried
    wh: int  # energy burned (consumers) or minted (producers) by this reading
    shortfall_wh: int


def device_readings(device, *, limit: int = 20) -> list[ReadingRow]:
    """The device's latest accepted meter readings, newest first. Private: callers check
    ``meters.consumers.may_see_consumption`` first."""
    from ledger.keys import PRODUCER_KINDS
    from ledger.models import Transaction, TxStatus
    from ledger.readings import chaincode_for

    producer = device.kind in PRODUCER_KINDS
    chaincode, function = chaincode_for(device.kind)
    rows = []
    txs = (Transaction.objects.filter(invoker_id=device.identity_id, chaincode=chaincode, function=function,
                                      status=TxStatus.VALID)
           .order_by("-id").only("args", "result", "proposed_at")[:limit])
    for tx in txs:
        args, result = tx.args or {}, tx.result or {}
        register = args.get("export_wh" if producer else "import_wh")
        wh = result.get("wh" if producer else "burned", 0) or 0
        rows.append(ReadingRow(at=tx.proposed_at, counter=args.get("counter"), register_wh=register, wh=wh,
                               shortfall_wh=result.get("shortfall", 0) or 0))
    return rows


@dataclass(frozen=True)
class MapMarker:
    state: object  # meters.selectors.DeviceState
    x: float
    y: float


MAP_WIDTH, MAP_HEIGHT, MAP_PAD = 360, 300, 30


def device_map(states: list) -> list[MapMarker]:
    """Project the devices' lat/lon onto a small SVG (equirectangular, scaled by cos(latitude)
    so a town keeps its shape): a map that needs no tile server and no internet."""
    import math

    placed = [s for s in states if s.device.latitude is not None and s.device.longitude is not None]
    if not placed:
        return []
    lats = [float(s.device.latitude) for s in placed]
    lons = [float(s.device.longitude) for s in placed]
    squeeze = math.cos(math.radians(sum(lats) / len(lats)))
    xs = [lon * squeeze for lon in lons]
    span = max(max(xs) - min(xs), max(lats) - min(lats), 1e-6)
    usable_w, usable_h = MAP_WIDTH - 2 * MAP_PAD, MAP_HEIGHT - 2 * MAP_PAD
    scale = min(usable_w, usable_h) / span
    off_x = MAP_PAD + (usable_w - (max(xs) - min(xs)) * scale) / 2
    off_y = MAP_PAD + (usable_h - (max(lats) - min(lats)) * scale) / 2
    return [MapMarker(state=s, x=round(off_x + (x - min(xs)) * scale, 1),
                      y=round(off_y + (max(lats) - lat) * scale, 1))
            for s, x, lat in zip(placed, xs, lats, strict=True)]


def map_points(states: list) -> list[dict]:
    """What the tiled map needs of each placed device: where to pin it and what to say. The
    coordinates only position the pin; residents are shown the device's place, never them."""
    from django.urls import reverse

    return [{"id": s.device.public_id, "name": s.device.name, "place": s.device.place, "relay": s.relay,
             "url": reverse("frontend:device", args=[s.device.public_id]),
             "lat": float(s.device.latitude), "lon": float(s.device.longitude)}
            for s in states if s.device.latitude is not None and s.device.longitude is not None]


def utility_organisation_of(user) -> Organisation | None:
    """The utility the user works for, or None (sticker sheets are utility work)."""
    from ledger.models import OrgType

    if not user.is_authenticated or not user.is_active:
        return None
    membership = (Membership.objects.filter(user=user, organisation__org_type=OrgType.UTILITY)
                  .select_related("organisation").order_by("id").first())
    return membership.organisation if membership else None
