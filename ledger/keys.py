"""The ledger's words for what the energy chaincodes keep, for the chaincodes and every app.

An app names an account or a world-state entry only through these functions, so the layout
lives in one place: the chaincodes (``ledger.chaincodes.energy``) write with them and the apps
read with them (and through ``ledger.selectors``). Pure: no ORM, no contract registry.

Account keys: ``producer:<msp>``, ``utility:<msp>:<shard>`` (the utility's coins are split
over UTILITY_SHARDS accounts so retail sales do not queue on one row lock),
``household:<msp>``, ``device:<public id>``, ``credit:<payer msp>@<payee msp>`` (fiat credit),
``debt:<debtor msp>@<creditor msp>`` (asset ``k-owed``: Wh a reversal could not take back because
the buyer had spent or given them away; paid first out of the next purchase).
World state of a meter: its last accepted reading at ``registers/<public id>`` (namespace of the
chaincode its readings invoke) and a consumer device's funded windows at ``windows/<public id>``
(namespace ``devices``). A utility's price schedule: ``<utility msp>/<kind>/<currency>``
(namespace ``pricing``).
Charity (chaincode ``charity-pool``, which shares the ``devices`` namespace because its
disbursements are funded windows): a campaign's pool ``pool:<slug>`` (asset k, and the
campaign's currency for the sub-Wh remainder of fiat donations), its sponsor's matching reserve
``match:<slug>``, a group funding's escrow ``escrow:<slug>``; world state ``campaign/<slug>``,
``beneficiaries/<slug>``, ``donation/<slug>/<id>``, ``disbursement/<slug>/<id>``,
``group/<slug>``.
Frequency billing (chaincode ``energy-billing``, namespace ``billing``): a slot's average grid
frequency ``freq/<slot>``, a household's units ``units/<station>/<slot>/<society>``, its bill
``bill/<station>/<slot>/<society>``, a distributor's station ``station/<station>``, the tariff
schedule ``tariffs`` and the billing configuration (time zone, dues threshold, fine and the
utility that collects dues) ``billing-config``; ``<slot>`` is the slot's start in UTC, ISO 8601.
Dues: a household's day statement ``statement/<station>/<society>/<date>`` (local date,
YYYY-MM-DD), its dues ``dues/<society>`` and each payment of them
``payment/<society>/<event id>``; the account a bank payment of dues names is its **bill
account** ``bill:<society>`` (not a ledger account: dues are world state, the money is fiat).
"""

from __future__ import annotations

ENERGY = "k"  # the energy coin's asset code: one k is one Wh
DEBT = "k-owed"  # Wh owed to the seller after a reversal; its own asset, so k's supply stays exact
UTILITY_SHARDS = 16

# Device kinds whose readings mint to their owner (``generator.mint``); every other device
# burns from its own account (``consumer.burn``).
PRODUCER_KINDS = frozenset({"producer_meter"})

# World-state namespaces of the energy chaincodes (``resident`` and ``consumer`` share one).
DEVICES_NAMESPACE = "devices"
GENERATOR_NAMESPACE = "generator"
PRICING_NAMESPACE = "pricing"
PRICE_KINDS = ("retail", "wholesale")
BILLING_NAMESPACE = "billing"
TARIFFS_KEY = "tariffs"
BILLING_CONFIG_KEY = "billing-config"

_REGISTERS = "registers/"
_WINDOWS = "windows/"


def producer_account(msp_id: str) -> str:
    return f"producer:{msp_id}"


def utility_account(msp_id: str, shard: int) -> str:
    return f"utility:{msp_id}:{shard}"


def household_account(msp_id: str) -> str:
    return f"household:{msp_id}"


def device_account(public_id: str) -> str:
    return f"device:{public_id}"


def pool_account(campaign: str) -> str:
    return f"pool:{campaign}"


def match_account(campaign: str) -> str:
    return f"match:{campaign}"


def escrow_account(group: str) -> str:
    return f"escrow:{group}"


def campaign_key(campaign: str) -> str:
    return f"campaign/{campaign}"


def beneficiaries_key(campaign: str) -> str:
    return f"beneficiaries/{campaign}"


def donation_key(campaign: str, donation_id: str) -> str:
    return f"donation/{campaign}/{donation_id}"


def disbursement_key(campaign: str, disbursement_id: str) -> str:
    return f"disbursement/{campaign}/{disbursement_id}"


def group_key(group: str) -> str:
    return f"group/{group}"


def credit_account(payer: str, payee: str) -> str:
    return f"credit:{payer}@{payee}"


def debt_account(debtor: str, creditor: str) -> str:
    return f"debt:{debtor}@{creditor}"


def meter_account(*, kind: str, public_id: str, msp_id: str) -> str:
    """The account a meter's readings move: a producer meter's production is its owner's, a
    consumer device pays from its own account."""
    return producer_account(msp_id) if kind in PRODUCER_KINDS else device_account(public_id)


def registers_namespace(kind: str) -> str:
    """The namespace of a meter's ``registers_key``: that of the chaincode its readings invoke."""
    return GENERATOR_NAMESPACE if kind in PRODUCER_KINDS else DEVICES_NAMESPACE


def registers_key(public_id: str) -> str:
    """World-state key of a meter's last accepted reading (counter and cumulative registers)."""
    return f"{_REGISTERS}{public_id}"


def windows_key(public_id: str) -> str:
    """World-state key (namespace ``devices``) of a device's funded windows."""
    return f"{_WINDOWS}{public_id}"


def price_key(utility: str, kind: str, currency: str) -> str:
    """World-state key (namespace ``pricing``) of a utility's schedule of one kind and currency."""
    return f"{utility}/{kind}/{currency}"


def price_key_parts(key: str) -> tuple[str, str, str] | None:
    """(utility, kind, currency) of a ``price_key`` (None for any other key)."""
    parts = key.split("/")
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else None


def device_of_windows_key(key: str) -> str | None:
    """The public id a ``windows_key`` names (None for any other key)."""
    return key[len(_WINDOWS):] if key.startswith(_WINDOWS) else None


def device_of_registers_key(key: str) -> str | None:
    """The public id a ``registers_key`` names (None for any other key)."""
    return key[len(_REGISTERS):] if key.startswith(_REGISTERS) else None


def freq_key(slot: str) -> str:
    """World-state key (namespace ``billing``) of a slot's average frequency."""
    return f"freq/{slot}"


def units_key(station: str, society: str, slot: str) -> str:
    """World-state key (namespace ``billing``) of a household's units in a slot. The slot comes
    before the household: a station's slot is written and read together, so its keys sit side by
    side in the index instead of one per leaf page."""
    return f"units/{station}/{slot}/{society}"


def bill_key(station: str, society: str, slot: str) -> str:
    """World-state key (namespace ``billing``) of a household's bill for a slot (slot before
    household, as ``units_key``)."""
    return f"bill/{station}/{slot}/{society}"


def station_key(station: str) -> str:
    """World-state key (namespace ``billing``) of a distributor's station and its households."""
    return f"station/{station}"


def statement_key(station: str, society: str, day: str) -> str:
    """World-state key (namespace ``billing``) of a household's statement for a local day."""
    return f"statement/{station}/{society}/{day}"


def dues_key(society: str) -> str:
    """World-state key (namespace ``billing``) of a household's dues: items, credit, breach."""
    return f"dues/{society}"


def dues_payment_key(society: str, event_id: str) -> str:
    """World-state key (namespace ``billing``) of one payment of a household's dues."""
    return f"payment/{society}/{event_id}"


_BILL = "bill:"


def bill_account(society: str) -> str:
    """The bill account a payment of a household's dues names: ``bill:<society msp>``."""
    return f"{_BILL}{society}"


def society_of_bill_account(account: str) -> str | None:
    """The household msp a ``bill_account`` names (None for anything else)."""
    society = account[len(_BILL):] if account.startswith(_BILL) else ""
    return society if society and "/" not in society else None


def account_key_parts(key: str) -> tuple[str, tuple[str, ...]]:
    """(role, names) of an account key, for naming accounts to people: ``("device", ("SL-0001",))``,
    ``("credit", (payer, payee))``, ``("debt", (debtor, creditor))``, ``("utility", (msp, shard))``,
    ``("household", (msp,))``, ``("issuance", ())``. Any other key is ``(key, ())``."""
    role, sep, rest = key.partition(":")
    if not sep:
        return key, ()
    if role in ("credit", "debt"):
        first, _, second = rest.partition("@")
        return role, (first, second)
    if role == "utility":
        msp, _, shard = rest.rpartition(":")
        return role, (msp, shard)
    if role in ("producer", "household", "device", "pool", "match", "escrow"):
        return role, (rest,)
    return key, ()
