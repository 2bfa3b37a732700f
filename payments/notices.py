"""A payment notice: what a bank (or Stripe) tells us about money that moved, validated into
the arguments of a seller chaincode. Pure: no ORM; the services check the organisations."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SELLER_CHAINCODES = ("retail-seller", "wholesale-seller")
# A payment whose metadata names a campaign (or a group funding) pays into ``charity-pool``:
# ``donate`` (campaign) or ``contribute_paid`` (group) instead of a seller's ``sell``.
CHARITY_CHAINCODE = "charity-pool"
CHARITY_FUNCTIONS = {"campaign": "donate", "group": "contribute_paid"}
# A payment whose metadata names a ``bill_account`` (``bill:<household msp>``) pays that
# household's dues: ``energy-billing.payDues``; its purpose is the bill account itself.
BILLING_CHAINCODE = "energy-billing"
BILL_PURPOSE = "bill"
PURPOSE_FUNCTIONS = {**CHARITY_FUNCTIONS, BILL_PURPOSE: "payDues"}
MAX_AMOUNT = 10**12  # minor units; far above any real payment, far below a bigint
_EVENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,199}")
_MSP_ID = re.compile(r"[-a-zA-Z0-9_]{1,64}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_SLUG = re.compile(r"[-a-zA-Z0-9_]{1,60}")
_BILL_ACCOUNT = re.compile(r"bill:[-a-zA-Z0-9_]{1,64}")
_TRUE = frozenset(["1", "true", "yes", "on"])
DONOR_NAME_MAX = 120
# ISO 4217 minor-unit exponents that are not 2, for amounts written as decimals in major units
# (camt XML, Stripe reports); Stripe's zero- and three-decimal lists agree with ISO.
_ZERO_DECIMAL = frozenset(["BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND",
                           "VUV", "XAF", "XOF", "XPF"])
_THREE_DECIMAL = frozenset(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"])


class NoticeError(ValueError):
    """The notice is malformed; the message is safe to show to the sender."""


def route_of(chaincode: str, purpose: str) -> tuple[str, str]:
    """(chaincode, function) a payment invokes: a seller's ``sell``, or the function for its
    purpose (``campaign:<slug>`` → donate, ``group:<slug>`` → contribute_paid, ``bill:<msp>`` →
    payDues)."""
    if not purpose:
        return chaincode, "sell"
    return chaincode, PURPOSE_FUNCTIONS[purpose.partition(":")[0]]


@dataclass(frozen=True)
class Donor:
    """Who gave, off the chain: a name, the consent to show it, the signed-in user's id. Kept on
    the payment's row and told to the charity app; never a chaincode argument."""

    name: str = ""
    show_name: bool = False
    user: int | None = None

    def details(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.name:
            out["donor_name"] = self.name
        if self.show_name:
            out["show_name"] = True
        if self.user is not None:
            out["donor_user"] = self.user
        return out

    @classmethod
    def from_details(cls, details: Any) -> Donor:
        if isinstance(details, str):
            details = json.loads(details or "{}")
        return donor_of(details if isinstance(details, dict) else {})


@dataclass(frozen=True)
class PaymentFacts:
    """What a report says of a payment: the key it is claimed under and the sale it pays for.
    ``purpose`` names a charity payment's campaign or group; ``details`` (the donor, off the
    chain) is kept from the first report and never compared."""

    provider: str
    scope: str
    payment_id: str
    chaincode: str
    payer: str
    payee: str
    amount: int
    currency: str
    created: datetime
    purpose: str = ""
    details: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def idempotency_key(self) -> str:
        return f"payment:{self.provider}:{self.scope}:{self.payment_id}"

    @property
    def route(self) -> tuple[str, str]:
        return route_of(self.chaincode, self.purpose)

    def params(self) -> list[Any]:
        return [self.provider, self.scope, self.payment_id, self.chaincode, self.purpose, self.payer, self.payee,
                self.amount, self.currency, self.created, json.dumps(self.details, separators=(",", ":"))]


@dataclass(frozen=True)
class PaymentNotice:
    event_id: str
    bank: str
    payer: str
    payee: str
    chaincode: str
    amount: int  # minor units
    currency: str
    paid_at: datetime
    payment_id: str = ""  # the processor's payment id (PaymentIntent, end-to-end id); "" = the event id
    campaign: str = ""  # charity-pool.donate into this campaign's pool
    group: str = ""  # charity-pool.contribute_paid into this group funding's escrow
    donor: Donor = Donor()
    bill_account: str = ""  # energy-billing.payDues: this household's dues (``bill:<msp>``)

    @property
    def purpose(self) -> str:
        if self.bill_account:
            return self.bill_account
        return f"campaign:{self.campaign}" if self.campaign else f"group:{self.group}" if self.group else ""

    @property
    def route(self) -> tuple[str, str]:
        return route_of(self.chaincode, self.purpose)

    def facts(self, *, provider: str, scope: str) -> PaymentFacts:
        return PaymentFacts(provider=provider, scope=scope, payment_id=self.payment_id or self.event_id,
                            chaincode=self.chaincode, payer=self.payer, payee=self.payee, amount=self.amount,
                            currency=self.currency, created=self.paid_at, purpose=self.purpose,
                            details=self.donor.details())

    def chaincode_args(self) -> dict[str, Any]:
        args = {"event_id": self.event_id, "payer": self.payer, "payee": self.payee, "amount": self.amount,
                "currency": self.currency, "paid_at": self.paid_at.isoformat()}
        if self.campaign:
            args["campaign"] = self.campaign
        if self.group:
            args["group"] = self.group
        if self.bill_account:
            args["account"] = self.bill_account
        return args


@dataclass(frozen=True)
class ReturnNotice:
    """A bank's debit of an earlier credit (a return or recall): reverse ``amount`` of it.
    ``refund`` names our own refund instruction it carries out (its idempotency key), if any."""

    event_id: str  # the notification's id: the reversal's id
    end_to_end_id: str  # the returned payment
    amount: int
    currency: str
    reason: str
    refund: str = ""


def minor_exponent(currency: str) -> int:
    """How many decimals of ``currency``'s major unit make one minor unit (2 for INR, 0 for JPY)."""
    return 0 if currency in _ZERO_DECIMAL else 3 if currency in _THREE_DECIMAL else 2


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise NoticeError(f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise NoticeError("body must be a JSON object")
    return data


def event_id_of(value: Any, name: str = "id") -> str:
    if not isinstance(value, str) or not _EVENT_ID.fullmatch(value):
        raise NoticeError(f"{name!r} must be 1-200 characters of letters, digits and _ . : - (starting with a letter or digit)")
    return value


def msp_id_of(name: str, value: Any) -> str:
    if not isinstance(value, str) or not _MSP_ID.fullmatch(value):
        raise NoticeError(f"{name!r} must be an organisation msp id (letters, digits, - and _, at most 64)")
    return value


def amount_of(value: Any) -> int:
    """Minor units as a JSON integer: never a float (10.5 or 1e3), a string or a boolean."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise NoticeError("'amount' must be an integer number of minor units (e.g. paise), not "
                          f"{type(value).__name__}")
    if value <= 0:
        raise NoticeError("'amount' must be positive")
    if value > MAX_AMOUNT:
        raise NoticeError(f"'amount' must be at most {MAX_AMOUNT}")
    return value


def currency_of(value: Any) -> str:
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value.upper()):
        raise NoticeError("'currency' must be a three-letter ISO 4217 code, e.g. INR")
    return value.upper()


def chaincode_of(value: Any) -> str:
    if value not in SELLER_CHAINCODES:
        if value == CHARITY_CHAINCODE:
            raise NoticeError("charity-pool payments name a campaign or a group in their metadata")
        if value == BILLING_CHAINCODE:
            raise NoticeError("energy-billing payments name a bill_account in their metadata")
        raise NoticeError(f"'chaincode' must be one of {', '.join(SELLER_CHAINCODES)}")
    return value


def charity_target_of(metadata: Any) -> tuple[str, str]:
    """(campaign, group) a payment's metadata names, at most one of them; ("", "") for a sale."""
    if metadata is None:
        return "", ""
    if not isinstance(metadata, dict):
        raise NoticeError("'metadata' must be an object")
    found = {}
    for name in CHARITY_FUNCTIONS:
        value = metadata.get(name)
        if value in (None, ""):
            continue
        if not isinstance(value, str) or not _SLUG.fullmatch(value):
            raise NoticeError(f"metadata {name!r} must be a slug (letters, digits, - and _, at most 60)")
        found[name] = value
    if len(found) > 1:
        raise NoticeError("metadata names both a campaign and a group: a payment pays one of them")
    return found.get("campaign", ""), found.get("group", "")


def bill_account_of(metadata: Any) -> str:
    """The bill account (``bill:<household msp>``) a payment's metadata names, or ""."""
    value = metadata.get("bill_account") if isinstance(metadata, dict) else None
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or not _BILL_ACCOUNT.fullmatch(value):
        raise NoticeError("metadata 'bill_account' must be bill:<household msp id>")
    return value


def targets_of(metadata: Any) -> tuple[str, str, str]:
    """(campaign, group, bill account) a payment's metadata names, at most one of them."""
    campaign, group = charity_target_of(metadata)
    bill = bill_account_of(metadata)
    if bill and (campaign or group):
        raise NoticeError("metadata names a bill account and a campaign or group: a payment pays one of them")
    return campaign, group, bill


def billed_chaincode_of(value: Any) -> str:
    """A payment of dues pays energy-billing (the processor may still say retail-seller, or nothing)."""
    if value in (None, "", BILLING_CHAINCODE, "retail-seller"):
        return BILLING_CHAINCODE
    raise NoticeError(f"a payment to a bill account pays {BILLING_CHAINCODE}, not {value!r}")


def routed_chaincode_of(value: Any, *, campaign: str, group: str) -> str:
    """The chaincode a payment pays: charity-pool when its metadata names a campaign or group
    (the processor may still say retail-seller, or nothing), else a seller chaincode."""
    if not (campaign or group):
        return chaincode_of(value)
    if value in (None, "", CHARITY_CHAINCODE, "retail-seller"):
        return CHARITY_CHAINCODE
    raise NoticeError(f"a payment to a {'campaign' if campaign else 'group'} pays {CHARITY_CHAINCODE}, not {value!r}")


def payer_of(value: Any, *, campaign: str) -> str:
    """The payer's msp id; a donation to a campaign may come from a donor without an account ("")."""
    if campaign and value in (None, ""):
        return ""
    return msp_id_of("payer", value)


def donor_of(metadata: Any) -> Donor:
    """The donor's off-chain details, read leniently: a malformed detail is dropped, never a
    reason to refuse money that has moved."""
    if not isinstance(metadata, dict):
        return Donor()
    name = metadata.get("donor_name")
    name = " ".join(name.split())[:DONOR_NAME_MAX] if isinstance(name, str) else ""
    show = metadata.get("show_name")
    show_name = show is True or (isinstance(show, str) and show.strip().lower() in _TRUE)
    user = metadata.get("donor_user")
    if isinstance(user, str) and user.strip().isdigit():
        user = int(user.strip())
    if isinstance(user, bool) or not isinstance(user, int) or not 0 < user < 2**63:
        user = None
    return Donor(name=name, show_name=show_name and bool(name), user=user)


def moment_of(value: Any) -> datetime:
    """Unix seconds (integer) or ISO 8601 with a timezone → aware UTC datetime."""
    if isinstance(value, bool):
        raise NoticeError("'created' must be unix seconds or an ISO 8601 time with a timezone")
    if isinstance(value, int):
        try:
            moment = datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise NoticeError("'created' is out of range") from None
    elif isinstance(value, str) and len(value) <= 40:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise NoticeError("'created' must be unix seconds or an ISO 8601 time with a timezone") from None
        if moment.tzinfo is None:
            raise NoticeError("'created' must carry a timezone")
        moment = moment.astimezone(UTC)
    else:
        raise NoticeError("'created' must be unix seconds or an ISO 8601 time with a timezone")
    if not 2000 <= moment.year <= 2200:
        raise NoticeError("'created' is out of range")
    return moment


BANK_FIELDS = ("id", "bank", "payer", "payee", "chaincode", "amount", "currency", "created")


def _required(names: tuple[str, ...], campaign: str, group: str, bill: str = "") -> list[str]:
    """A donation to a campaign may omit its payer; any charity or bill payment its chaincode."""
    optional = ({"chaincode"} if campaign or group or bill else set()) | ({"payer"} if campaign else set())
    return [name for name in names if name not in optional]


def bank_notice_from(data: dict[str, Any]) -> PaymentNotice:
    """A bank's payment as JSON. ``metadata`` (optional) names a ``campaign`` or ``group`` for
    a charity payment, with the donor's off-chain ``donor_name``, ``show_name``, ``donor_user``,
    or a household's ``bill_account`` for a payment of its dues."""
    campaign, group, bill = targets_of(data.get("metadata"))
    missing = [name for name in _required(BANK_FIELDS, campaign, group, bill) if data.get(name) is None]
    if missing:
        raise NoticeError(f"missing field{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
    end_to_end = data.get("end_to_end_id")
    return PaymentNotice(
        payment_id="" if end_to_end is None else event_id_of(end_to_end, "end_to_end_id"),
        event_id=event_id_of(data["id"]), bank=msp_id_of("bank", data["bank"]),
        payer=payer_of(data.get("payer"), campaign=campaign), payee=msp_id_of("payee", data["payee"]),
        chaincode=(billed_chaincode_of(data.get("chaincode")) if bill
                   else routed_chaincode_of(data.get("chaincode"), campaign=campaign, group=group)),
        amount=amount_of(data["amount"]), currency=currency_of(data["currency"]), paid_at=moment_of(data["created"]),
        campaign=campaign, group=group, donor=donor_of(data.get("metadata")) if campaign or group else Donor(),
        bill_account=bill,
    )


def stripe_notice_from(*, event_id: Any, amount: Any, currency: Any, created: Any,
                       metadata: Any, payment_id: Any) -> PaymentNotice:
    """Stripe objects carry the GridCoin routing in ``metadata``: payer, payee, chaincode and
    bank (the processor organisation whose service identity reports the payment); a charity
    payment names its ``campaign`` or ``group`` there (payer and chaincode may then be left out,
    see ``bank_notice_from``), with the donor's off-chain details; a payment of dues its
    ``bill_account``."""
    if not isinstance(metadata, dict):
        raise NoticeError("the payment has no metadata")
    campaign, group, bill = targets_of(metadata)
    wanted = _required(("payer", "payee", "chaincode", "bank"), campaign, group, bill)
    missing = [name for name in wanted if not metadata.get(name)]
    if missing:
        raise NoticeError(f"metadata lacks {', '.join(missing)}")
    if amount is None or currency is None or created is None:
        raise NoticeError("the payment lacks amount, currency or created")
    return PaymentNotice(
        payment_id=event_id_of(payment_id, "payment_intent"),
        event_id=event_id_of(event_id), bank=msp_id_of("bank", metadata["bank"]),
        payer=payer_of(metadata.get("payer"), campaign=campaign), payee=msp_id_of("payee", metadata["payee"]),
        chaincode=(billed_chaincode_of(metadata.get("chaincode")) if bill
                   else routed_chaincode_of(metadata.get("chaincode"), campaign=campaign, group=group)),
        amount=amount_of(amount), currency=currency_of(currency), paid_at=moment_of(created),
        campaign=campaign, group=group, donor=donor_of(metadata) if campaign or group else Donor(),
        bill_account=bill,
    )


RETURN_FIELDS = ("id", "bank", "return_of", "amount", "currency")


def return_notice_from(data: dict[str, Any]) -> ReturnNotice:
    """A bank's return of an earlier credit, as JSON: ``return_of`` is the payment's end-to-end id."""
    missing = [name for name in RETURN_FIELDS if data.get(name) is None]
    if missing:
        raise NoticeError(f"missing field{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
    msp_id_of("bank", data["bank"])
    reason, refund = data.get("reason", ""), data.get("refund", "")
    return ReturnNotice(event_id=event_id_of(data["id"]), end_to_end_id=event_id_of(data["return_of"], "return_of"),
                        amount=amount_of(data["amount"]), currency=currency_of(data["currency"]),
                        reason=reason[:200] if isinstance(reason, str) else "",
                        refund=refund[:200] if isinstance(refund, str) else "")
