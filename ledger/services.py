"""The ledger's write path: membership, accounts and ``invoke``. Nothing else writes balances."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from . import chaincodes  # noqa: F401  (registers the built-in contracts)
from .canonical import CanonicalError, canonical_json
from .contracts import (
    ISSUANCE,
    AccountInfo,
    ContractError,
    Context,
    Effects,
    Invoker,
    check_balances,
    check_policy,
    net_postings,
    registry,
)
from .crypto import b64, verify_signature
from .documents import SIGNATURE_REJECTION, body_digest, proposal_document, transaction_hash
from .models import Account, AccountKind, Asset, Identity, IdentityKind, Organisation, Posting, StateEntry, StateWrite, Transaction, TxStatus

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock


class LedgerError(Exception):
    """The invocation could not even be recorded (malformed request)."""


class IdempotencyConflict(LedgerError):
    """The idempotency key was already used with a different body."""


@dataclass(frozen=True)
class InvokeResult:
    tx_id: int
    tx_hash: str
    status: str
    reason: str
    result: Any
    replayed: bool = False

    @property
    def ok(self) -> bool:
        return self.status == TxStatus.VALID


# --- membership and accounts ------------------------------------------------------------------

@transaction.atomic
def organisation_create(*, msp_id: str, name: str, org_type: str) -> Organisation:
    return Organisation.objects.create(msp_id=msp_id, name=name, org_type=org_type)


@transaction.atomic
def identity_register(*, organisation: Organisation, name: str, public_key: bytes,
                      kind: str = IdentityKind.USER) -> Identity:
    if len(public_key) != 32:
        raise LedgerError("an Ed25519 public key is 32 bytes")
    return Identity.objects.create(organisation=organisation, name=name, public_key=public_key, kind=kind)


@transaction.atomic
def asset_create(*, code: str, name: str, scale: int, display_unit: str, issuer: Organisation) -> Asset:
    asset = Asset.objects.create(code=code, name=name, scale=scale, display_unit=display_unit)
    Account.objects.create(key=ISSUANCE, asset=asset, kind=AccountKind.ISSUANCE, organisation=issuer)
    return asset


@transaction.atomic
def account_open(*, key: str, asset: Asset | str, organisation: Organisation,
                 kind: str = AccountKind.HOLDER) -> Account:
    """Open (or return the existing) zero-balance account; moves no value."""
    if kind == AccountKind.ISSUANCE or key == ISSUANCE:
        raise LedgerError("issuance accounts are opened with their asset")
    asset_code = asset.code if isinstance(asset, Asset) else asset
    account, created = Account.objects.get_or_create(
        key=key, asset_id=asset_code, defaults={"organisation": organisation, "kind": kind}
    )
    if not created and account.organisation_id != organisation.pk:
        raise LedgerError(f"{asset_code} account {key!r} belongs to another organisation")
    return account


# --- invoke -----------------------------------------------------------------------------------

def invoker_of(identity: Identity) -> Invoker:
    org = identity.organisation
    return Invoker(identity_id=identity.pk, name=f"{org.msp_id}/{identity.name}", msp_id=org.msp_id,
                   org_id=org.pk, org_type=org.org_type)


def invoke(*, chaincode: str, function: str, args: dict[str, Any], invoker: Identity,
           idempotency_key: str | None, signer: Ed25519PrivateKey | None = None,
           signature: bytes | None = None, proposed_at: datetime | None = None) -> InvokeResult:
    """Run ``chaincode.function(args)`` as ``invoker`` and commit its effects atomically.

    The invoker's signature covers the canonical proposal; pass ``signature`` (device keys) or
    ``signer`` (custodial keys) to produce it. Rejections are recorded and move nothing.
    """
    if not isinstance(args, dict):
        raise LedgerError("args must be a JSON object")
    if idempotency_key is not None and not (0 < len(idempotency_key) <= 255):
        raise LedgerError("idempotency keys are 1 to 255 characters")
    who = invoker_of(invoker)
    proposed_at = proposed_at or timezone.now()
    proposal = proposal_document(chaincode=chaincode, function=function, args=args, invoker=who.name,
                                 idempotency_key=idempotency_key, proposed_at=proposed_at)
    try:
        payload = canonical_json(proposal)
    except CanonicalError as exc:
        raise LedgerError(f"args are not ledger JSON: {exc}") from exc
    if signature is None:
        if signer is None:
            raise LedgerError("invoke needs the invoker's signature or signer")
        signature = signer.sign(payload)
    digest = body_digest(chaincode, function, args)

    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                return _invoke_once(invoker, who, proposal, payload, signature, digest, proposed_at)
        except IntegrityError:
            existing = _idempotent_match(invoker.pk, idempotency_key)
            if existing is None:
                raise
            return _replay(existing, digest)
        except OperationalError as exc:
            if _sqlstate(exc) in RETRYABLE_SQLSTATES and attempt < MAX_ATTEMPTS:
                logger.info("invoke %s.%s retried after %s", chaincode, function, _sqlstate(exc))
                continue
            raise
    raise AssertionError("unreachable")


def _sqlstate(exc: BaseException) -> str | None:
    cause = exc.__cause__
    return getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)


def _idempotent_match(invoker_id: int, key: str | None) -> Transaction | None:
    if key is None:
        return None
    return Transaction.objects.filter(invoker_id=invoker_id, idempotency_key=key).first()


def _replay(existing: Transaction, digest: str) -> InvokeResult:
    if existing.body_digest != digest:
        raise IdempotencyConflict(
            f"idempotency key {existing.idempotency_key!r} was already used with a different body"
        )
    return InvokeResult(tx_id=existing.pk, tx_hash=existing.tx_hash, status=existing.status,
                        reason=existing.reason, result=existing.result, replayed=True)


def _invoke_once(identity: Identity, who: Invoker, proposal: dict[str, Any], payload: bytes, signature: bytes,
                 digest: str, proposed_at: datetime) -> InvokeResult:
    reader = _DatabaseReader()
    effects = Effects()
    result: Any = None
    status, reason = TxStatus.VALID.value, ""
    applied: tuple[list[tuple[AccountInfo, int]], list[list]] = ([], [])
    if not verify_signature(bytes(identity.public_key), signature, payload):
        status, reason = TxStatus.REJECTED.value, SIGNATURE_REJECTION
        proposal = {**proposal, "idempotency_key": None}  # a forgery must not claim the real key
    elif identity.revoked_at is not None:
        status, reason = TxStatus.REJECTED.value, f"identity {who.name} is revoked"
    else:
        try:
            fn = registry.resolve(proposal["chaincode"], proposal["function"])
            check_policy(fn, who, proposal["chaincode"], proposal["function"])
            ctx = Context(chaincode=proposal["chaincode"], function=proposal["function"], args=proposal["args"],
                          invoker=who, now=proposed_at, reader=reader)
            result = fn.fn(ctx)
            canonical_json(result)
            effects = ctx.effects
            applied = _apply(effects, reader)
        except ContractError as exc:
            status, reason, result, effects = TxStatus.REJECTED.value, exc.reason, None, Effects()
            applied = ([], [])

    postings, state_writes = applied
    sig_text = b64(signature)
    tx_hash = transaction_hash(
        proposal=proposal, signature=sig_text, status=status, reason=reason, result=result,
        events=effects.events,
        postings=[[info.key, info.asset, amount] for info, amount in postings],
        state_writes=state_writes,
    )
    tx = Transaction.objects.create(
        chaincode=proposal["chaincode"], function=proposal["function"], args=proposal["args"],
        invoker_id=identity.pk, idempotency_key=proposal["idempotency_key"], body_digest=digest,
        proposed_at=proposed_at, signature=sig_text, status=status, reason=reason, result=result,
        events=effects.events, tx_hash=tx_hash,
    )
    if postings:
        Posting.objects.bulk_create(
            Posting(transaction_id=tx.pk, account_id=info.id, asset_id=info.asset, amount=amount)
            for info, amount in postings
        )
    if state_writes:
        StateWrite.objects.bulk_create(
            StateWrite(transaction_id=tx.pk, namespace=ns, key=key, value=value, is_delete=is_delete, version=version)
            for ns, key, value, is_delete, version in state_writes
        )
    return InvokeResult(tx_id=tx.pk, tx_hash=tx_hash, status=status, reason=reason, result=result)


class _DatabaseReader:
    """Reads for a running contract; locked reads use SELECT ... FOR UPDATE where supported."""

    def account(self, key: str, asset: str, *, lock: bool) -> AccountInfo | None:
        rows = _select_accounts([(key, asset)], lock=lock)
        return rows.get((key, asset))

    def state(self, namespace: str, key: str, *, lock: bool) -> tuple[Any, int, bool] | None:
        qs = StateEntry.objects.filter(namespace=namespace, key=key)
        if lock:
            qs = qs.select_for_update()
        entry = qs.first()
        return None if entry is None else (entry.value, entry.version, entry.is_deleted)


def _select_accounts(keys: list[tuple[str, str]], *, lock: bool) -> dict[tuple[str, str], AccountInfo]:
    placeholders = ",".join(["(%s,%s)"] * len(keys))
    sql = (
        "SELECT id, key, asset_id, kind, organisation_id, balance FROM ledger_account "
        f"WHERE (key, asset_id) IN ({placeholders}) ORDER BY id"
    )
    if lock and connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    params = [p for pair in keys for p in pair]
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return {(r[1], r[2]): AccountInfo(*r) for r in cur.fetchall()}


def _apply(effects: Effects, reader: _DatabaseReader) -> tuple[list[tuple[AccountInfo, int]], list[list]]:
    """Lock the touched accounts in id order, check, then write balances and world state.

    Raises ContractError before writing anything, so a refused invocation leaves no trace.
    """
    deltas = net_postings(effects.postings)
    wanted = list(dict.fromkeys([*deltas, *((k, a) for k, a, _ in effects.owner_checks)]))
    accounts = _select_accounts(wanted, lock=True) if wanted else {}
    for key, asset in wanted:
        if (key, asset) not in accounts:
            raise ContractError(f"no {asset} account {key!r}")
    for key, asset, org_id in effects.owner_checks:
        if accounts[(key, asset)].organisation_id != org_id:
            raise ContractError(f"{asset} account {key!r} does not belong to the invoker's organisation")
    check_balances(deltas, accounts)

    versions: dict[tuple[str, str], int] = {}
    if effects.state_writes:
        for ns in {w[0] for w in effects.state_writes}:
            keys = [w[1] for w in effects.state_writes if w[0] == ns]
            for entry in StateEntry.objects.select_for_update().filter(namespace=ns, key__in=keys):
                versions[(ns, entry.key)] = entry.version

    if deltas:
        ids = [accounts[k].id for k in deltas]
        cases = " ".join(["WHEN %s THEN %s"] * len(deltas))
        params: list[Any] = []
        for k, d in deltas.items():
            params += [accounts[k].id, d]
        with connection.cursor() as cur:
            cur.execute(
                f"UPDATE ledger_account SET balance = balance + CASE id {cases} END "
                f"WHERE id IN ({','.join(['%s'] * len(ids))})",
                params + ids,
            )

    state_writes: list[list] = []
    latest: dict[tuple[str, str], list] = {}
    for ns, key, value, is_delete in effects.state_writes:
        version = versions.get((ns, key), 0) + 1
        versions[(ns, key)] = version
        row = [ns, key, value, is_delete, version]
        state_writes.append(row)
        latest[(ns, key)] = row
    if latest:
        StateEntry.objects.bulk_create(
            [StateEntry(namespace=ns, key=key, value=value, is_deleted=is_delete, version=version)
             for ns, key, value, is_delete, version in latest.values()],
            update_conflicts=True, unique_fields=["namespace", "key"],
            update_fields=["value", "is_deleted", "version"],
        )
    return [(accounts[k], d) for k, d in deltas.items()], state_writes
