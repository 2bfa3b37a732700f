"""The ledger's write path: membership, accounts and ``invoke``. Nothing else writes balances.

``invoke`` runs a contract through the execution core (execution.py) and commits its effects in
the cheapest way that is still exact, which the caller never has to choose:

- a pure value movement on PostgreSQL (postings, no state writes) is one SQL statement that
  locks the accounts, refuses an overdraft or a reused idempotency key by writing nothing, and
  otherwise writes balances, transaction, postings and the sealing queue;
- anything else (state writes, refusals, keyless or forged proposals, SQLite) is recorded step
  by step in a transaction.

Outside a transaction ``invoke`` opens its own and retries serialisation failures. Inside the
caller's transaction its effects become part of it: they commit or roll back with the caller's
work (an app's audit row, say), and nothing ``invoke`` expects (a refusal, a replay) aborts it.
"""

from __future__ import annotations

import hashlib
import logging
import random
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction

from . import chaincodes  # noqa: F401  (registers the built-in contracts)
from .canonical import json_text
from .chaincodes import config as config_chaincode
from .contracts import ISSUANCE, AccountInfo, ContractError, Effects
from .crypto import b64, private_key_from_seed, public_bytes, unb64
from .db import bound_cursor, constraint_name, copy_rows, sqlstate
from .documents import timestamp_text
from .execution import (
    Applied,
    Call,
    DatabaseReader,
    Execution,
    IdempotencyConflict,
    InvokeResult,
    LedgerError,
    NeedsTransaction,
    NoReads,
    check_accounts,
    check_effects,
    execute,
    idempotency_conflict,
    invoker_of,
    lock_state_keys,
    prepare,
    select_accounts,
    state_versions,
    touched_accounts,
    update_balances,
    write_state_after_history,
)
from .models import (
    Account,
    AccountKind,
    Asset,
    Identity,
    IdentityKind,
    Organisation,
    OrgType,
    Posting,
    StateEntry,
    StateWrite,
    Transaction,
    UnsealedTransaction,
)

__all__ = [
    "IdempotencyConflict", "InvokeResult", "LedgerError", "MembershipConflict", "account_open", "account_transfer",
    "asset_create", "config_approve", "config_change", "config_changes", "config_propose", "identity_register", "identity_revoke", "identity_rotate_key", "invoke",
    "invoker_of", "organisation_create", "organisation_set_type",
]

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock


# --- membership and accounts ------------------------------------------------------------------
# Each change is one configuration transaction (chaincode ``config``) signed by the configuration
# admin, whose key the platform holds (settings.GRIDCOIN_CONFIG_ADMIN_KEY); the tables follow
# what it wrote, in the same database transaction.

class MembershipConflict(LedgerError, IntegrityError):
    """The organisation, identity, asset or account already exists (an IntegrityError, as the
    unique constraint it replaces raised)."""


CONFIG_ADMIN = "admin"
_admin_keys: dict[str, Ed25519PrivateKey] = {}


def config_admin_key() -> Ed25519PrivateKey:
    """settings.GRIDCOIN_CONFIG_ADMIN_KEY, or a seed derived from the orderer key."""
    seed = settings.GRIDCOIN_CONFIG_ADMIN_KEY or settings.GRIDCOIN_ORDERER_KEY
    if seed not in _admin_keys:
        raw = unb64(seed)
        if not settings.GRIDCOIN_CONFIG_ADMIN_KEY:
            raw = hashlib.sha256(b"gridcoin configuration admin\n" + raw).digest()
        if len(raw) != 32:
            raise LedgerError("GRIDCOIN_CONFIG_ADMIN_KEY must be 32 bytes, base64-encoded")
        _admin_keys.clear()
        _admin_keys[seed] = private_key_from_seed(raw)
    return _admin_keys[seed]


def config_admin() -> Identity:
    """The configuration admin's identity; the first call on a ledger without configuration
    makes the bootstrap transaction that registers it."""
    identity = (Identity.objects.select_related("organisation")
                .filter(organisation__msp_id=settings.GRIDCOIN_CONFIG_MSP, name=CONFIG_ADMIN).first())
    return identity if identity is not None else _bootstrap()


def _bootstrap() -> Identity:
    key = config_admin_key()
    genesis = _genesis_listing() if Organisation.objects.exists() else []
    org = Organisation.objects.create(msp_id=settings.GRIDCOIN_CONFIG_MSP, name="Network configuration",
                                      org_type=OrgType.OPERATOR)
    identity = Identity.objects.create(organisation=org, name=CONFIG_ADMIN, public_key=public_bytes(key),
                                       kind=IdentityKind.SERVICE)
    _config_invoke(identity, key, "bootstrap", {
        "msp_id": org.msp_id, "name": org.name, "org_type": org.org_type, "admin": CONFIG_ADMIN,
        "public_key": public_bytes(key).hex(), "genesis": genesis,
    })
    return identity


def _genesis_listing() -> list[list[Any]]:
    """The members a ledger already has when it adopts on-chain membership, as config state."""
    entries: list[list[Any]] = []
    for org in Organisation.objects.order_by("id"):
        entries.append([config_chaincode.org_key(org.msp_id), {"name": org.name, "org_type": org.org_type}])
    for ident in Identity.objects.select_related("organisation").order_by("id"):
        entries.append([config_chaincode.identity_key(ident.qualified_name), _identity_value(ident)])
    for asset in Asset.objects.order_by("code"):
        issuer = (Account.objects.filter(asset=asset, key=ISSUANCE).values_list("organisation__msp_id", flat=True)
                  .first())
        entries.append([config_chaincode.asset_key(asset.code), {"name": asset.name, "scale": asset.scale,
                        "display_unit": asset.display_unit, "issuer": issuer}])
    for account in Account.objects.select_related("organisation").order_by("id"):
        entries.append([config_chaincode.account_key(account.asset_id, account.key),
                        {"kind": account.kind, "organisation": account.organisation.msp_id}])
    return entries


def _identity_value(identity: Identity) -> dict[str, Any]:
    return {"kind": identity.kind, "public_key": bytes(identity.public_key).hex(),
            "revoked": None if identity.revoked_at is None else timestamp_text(identity.revoked_at)}


def _config_invoke(invoker: Identity, key: Ed25519PrivateKey, function: str, args: dict[str, Any]) -> Any:
    # ``_invoke``: the caller projects the writes itself (it knows the rows it already holds).
    result = _invoke(chaincode=config_chaincode.CONFIG, function=function, args=args, invoker=invoker,
                     idempotency_key=None, signer=key, signature=None, proposed_at=None)
    if not result.ok:
        if result.reason.endswith("already exists"):
            raise MembershipConflict(result.reason)
        raise LedgerError(result.reason)
    return result.result


def config_change(function: str, args: dict[str, Any]) -> Any:
    """Make a configuration change as the configuration admin (one ledger transaction)."""
    return _config_invoke(config_admin(), config_admin_key(), function, args)


@transaction.atomic
def config_changes(changes: list[tuple[str, dict[str, Any]]], *, batch_size: int = 500) -> list[Any]:
    """Many configuration changes as the configuration admin, in order: one ledger transaction
    each, written a batch at a time (``ledger.batch``), the tables brought in line after each
    batch. For registering a fleet; all or nothing."""
    from .batch import Request, invoke_batch

    admin, key = config_admin(), config_admin_key()
    results: list[Any] = []
    for start in range(0, len(changes), batch_size):
        requests = [Request(chaincode=config_chaincode.CONFIG, function=function, args=args, invoker=admin,
                            idempotency_key=f"config-bulk:{secrets.token_hex(12)}", signer=key)
                    for function, args in changes[start:start + batch_size]]
        done = []
        for outcome in invoke_batch(requests):
            if isinstance(outcome, LedgerError) or not outcome.ok:
                reason = outcome if isinstance(outcome, LedgerError) else outcome.reason
                if str(reason).endswith("already exists"):
                    raise MembershipConflict(str(reason))
                raise LedgerError(str(reason))
            done.append(outcome.result)
        _project_many([write for result in done for write in result["applied"]])
        results += done
    return results


def _project_many(applied: list[list[Any]]) -> None:
    """``_project`` for many writes: identities and accounts that have no row yet are inserted
    in bulk; everything else (organisations, assets, changed rows) goes through ``_project``."""
    final: dict[str, Any] = {}
    for key, value in applied:
        final[key] = value  # the last write of a key is what the table shows
    identities = {k: v for k, v in final.items() if k.startswith("identity/")}
    accounts = {k: v for k, v in final.items() if k.startswith("account/")}
    existing = {config_chaincode.identity_key(f"{msp}/{name}") for msp, name in Identity.objects.filter(
        name__in={k.rsplit("/", 1)[1] for k in identities}).values_list("organisation__msp_id", "name")}
    existing |= {config_chaincode.account_key(asset, key) for asset, key in Account.objects.filter(
        key__in={k.split("/", 2)[2] for k in accounts}).values_list("asset_id", "key")}
    fresh = (set(identities) | set(accounts)) - existing
    _project([[k, v] for k, v in final.items() if k not in fresh])
    orgs = {o.msp_id: o for o in Organisation.objects.filter(
        msp_id__in={k.split("/")[1] for k in fresh if k.startswith("identity/")}
        | {v["organisation"] for k, v in accounts.items() if k in fresh})}
    new_identities = []
    for key in (k for k in identities if k in fresh):
        msp, _, name = key.removeprefix("identity/").partition("/")
        value = identities[key]
        revoked = value.get("revoked")
        new_identities.append(Identity(organisation=orgs[msp], name=name, kind=value["kind"],
                                       public_key=bytes.fromhex(value["public_key"]),
                                       revoked_at=None if revoked is None else datetime.fromisoformat(revoked)))
    Identity.objects.bulk_create(new_identities, batch_size=2000)
    new_accounts = []
    for key in (k for k in accounts if k in fresh):
        asset, _, account = key.removeprefix("account/").partition("/")
        new_accounts.append(Account(key=account, asset_id=asset, kind=accounts[key]["kind"],
                                    organisation=orgs[accounts[key]["organisation"]]))
    Account.objects.bulk_create(new_accounts, batch_size=2000)


def _project(applied: list[list[Any]], known: dict[str, Organisation] | None = None) -> dict[str, Any]:
    """Bring the tables in line with configuration writes; returns the rows written by key."""
    orgs = dict(known or {})
    rows: dict[str, Any] = {}

    def org_of(msp: str) -> Organisation:
        if msp not in orgs:
            orgs[msp] = Organisation.objects.get(msp_id=msp)
        return orgs[msp]

    for key, value in applied:
        kind, _, rest = key.partition("/")
        if kind == "org":
            org, _ = Organisation.objects.update_or_create(msp_id=rest, defaults={"name": value["name"],
                                                                                  "org_type": value["org_type"]})
            orgs[rest] = rows[key] = org
        elif kind == "identity":
            msp, _, name = rest.partition("/")
            revoked = value.get("revoked")
            rows[key], _ = Identity.objects.update_or_create(
                organisation=org_of(msp), name=name,
                defaults={"kind": value["kind"], "public_key": bytes.fromhex(value["public_key"]),
                          "revoked_at": None if revoked is None else datetime.fromisoformat(revoked)})
        elif kind == "asset":
            rows[key], _ = Asset.objects.update_or_create(code=rest, defaults={
                "name": value["name"], "scale": value["scale"], "display_unit": value["display_unit"]})
        elif kind == "account":
            asset, _, account = rest.partition("/")
            rows[key], _ = Account.objects.update_or_create(
                key=account, asset_id=asset,
                defaults={"kind": value["kind"], "organisation": org_of(value["organisation"])})
    return rows


@transaction.atomic
def organisation_create(*, msp_id: str, name: str, org_type: str) -> Organisation:
    done = config_change("createOrganisation", {"msp_id": msp_id, "name": name, "org_type": str(org_type)})
    return _project(done["applied"])[config_chaincode.org_key(msp_id)]


@transaction.atomic
def organisation_set_type(*, organisation: Organisation, org_type: str) -> Organisation:
    done = config_change("setOrganisationType", {"msp_id": organisation.msp_id, "org_type": str(org_type)})
    return _project(done["applied"])[config_chaincode.org_key(organisation.msp_id)]


@transaction.atomic
def identity_register(*, organisation: Organisation, name: str, public_key: bytes,
                      kind: str = IdentityKind.USER) -> Identity:
    if len(public_key) != 32:
        raise LedgerError("an Ed25519 public key is 32 bytes")
    qualified = f"{organisation.msp_id}/{name}"
    done = config_change("registerIdentity", {"identity": qualified, "kind": str(kind),
                                              "public_key": bytes(public_key).hex()})
    return _project(done["applied"], {organisation.msp_id: organisation})[config_chaincode.identity_key(qualified)]


@transaction.atomic
def identity_rotate_key(*, identity: Identity, public_key: bytes) -> Identity:
    """Replace an identity's key: its later proposals must be signed by the new one, its earlier
    transactions still verify with the key in force when they were made."""
    if len(public_key) != 32:
        raise LedgerError("an Ed25519 public key is 32 bytes")
    done = config_change("rotateKey", {"identity": identity.qualified_name, "public_key": bytes(public_key).hex()})
    return _project(done["applied"], {identity.organisation.msp_id: identity.organisation})[
        config_chaincode.identity_key(identity.qualified_name)]


@transaction.atomic
def identity_revoke(*, identity: Identity) -> Identity:
    """Revoke an identity: its later proposals are refused."""
    done = config_change("revokeIdentity", {"identity": identity.qualified_name})
    return _project(done["applied"], {identity.organisation.msp_id: identity.organisation})[
        config_chaincode.identity_key(identity.qualified_name)]


@transaction.atomic
def asset_create(*, code: str, name: str, scale: int, display_unit: str, issuer: Organisation) -> Asset:
    done = config_change("createAsset", {"code": code, "name": name, "scale": scale, "display_unit": display_unit,
                                         "issuer": issuer.msp_id})
    return _project(done["applied"], {issuer.msp_id: issuer})[config_chaincode.asset_key(code)]


@transaction.atomic
def account_open(*, key: str, asset: Asset | str, organisation: Organisation,
                 kind: str = AccountKind.HOLDER) -> Account:
    """Open (or return the existing) zero-balance account; moves no value."""
    if kind == AccountKind.ISSUANCE or key == ISSUANCE:
        raise LedgerError("issuance accounts are opened with their asset")
    asset_code = asset.code if isinstance(asset, Asset) else asset
    account = Account.objects.filter(key=key, asset_id=asset_code).first()
    if account is None:
        try:
            with transaction.atomic():
                done = config_change("openAccount", {"key": key, "asset": asset_code, "kind": str(kind),
                                                     "organisation": organisation.msp_id})
                return _project(done["applied"], {organisation.msp_id: organisation})[
                    config_chaincode.account_key(asset_code, key)]
        except MembershipConflict:
            # Opened meanwhile by a concurrent caller (its commit is what the refusal waited for).
            account = Account.objects.filter(key=key, asset_id=asset_code).first()
            if account is None:
                raise
    if account.organisation_id != organisation.pk:
        raise LedgerError(f"{asset_code} account {key!r} belongs to another organisation")
    return account


@transaction.atomic
def account_transfer(*, account: Account, organisation: Organisation) -> Account:
    """Give an account to another organisation (its balance goes with it)."""
    done = config_change("transferAccount", {"key": account.key, "asset": account.asset_id,
                                             "organisation": organisation.msp_id})
    return _project(done["applied"], {organisation.msp_id: organisation})[
        config_chaincode.account_key(account.asset_id, account.key)]


@transaction.atomic
def config_propose(*, invoker: Identity, signer: Ed25519PrivateKey, proposal_id: str, function: str,
                   args: dict[str, Any]) -> dict[str, Any]:
    """Under the majority policy: ``invoker``'s organisation proposes a change (and approves it).
    Returns the contract's result: ``pending`` while too few approve, the ``applied`` writes once
    a majority does."""
    return _member_config_invoke(invoker, signer, "propose", {"id": proposal_id, "function": function, "args": args})


@transaction.atomic
def config_approve(*, invoker: Identity, signer: Ed25519PrivateKey, proposal_id: str) -> dict[str, Any]:
    """Under the majority policy: ``invoker``'s organisation approves a pending proposal."""
    return _member_config_invoke(invoker, signer, "approve", {"id": proposal_id})


def _member_config_invoke(invoker: Identity, signer: Ed25519PrivateKey, function: str,
                          args: dict[str, Any]) -> dict[str, Any]:
    result = invoke(chaincode=config_chaincode.CONFIG, function=function, args=args, invoker=invoker,
                    idempotency_key=None, signer=signer)
    if not result.ok:
        raise LedgerError(result.reason)  # the caller's atomic block drops the rejection with it
    return result.result


# --- invoke -----------------------------------------------------------------------------------

def invoke(*, chaincode: str, function: str, args: dict[str, Any], invoker: Identity,
           idempotency_key: str | None, signer: Ed25519PrivateKey | None = None,
           signature: bytes | None = None, proposed_at: datetime | None = None) -> InvokeResult:
    """Run ``chaincode.function(args)`` as ``invoker`` and commit its effects atomically.

    The invoker's signature covers the canonical proposal; pass ``signature`` (device keys) or
    ``signer`` (custodial keys) to produce it. Rejections are recorded and move nothing. The
    same idempotency key with the same body answers the recorded transaction again
    (``replayed``); with another body it raises IdempotencyConflict.
    """
    if chaincode == config_chaincode.CONFIG:
        # A configuration change and the tables that show it commit together.
        with transaction.atomic():
            result = _invoke(chaincode=chaincode, function=function, args=args, invoker=invoker,
                             idempotency_key=idempotency_key, signer=signer, signature=signature,
                             proposed_at=proposed_at)
            if result.ok and not result.replayed and result.result:
                _project(result.result.get("applied", []))
            return result
    return _invoke(chaincode=chaincode, function=function, args=args, invoker=invoker,
                   idempotency_key=idempotency_key, signer=signer, signature=signature, proposed_at=proposed_at)


def _invoke(*, chaincode: str, function: str, args: dict[str, Any], invoker: Identity,
            idempotency_key: str | None, signer: Ed25519PrivateKey | None, signature: bytes | None,
            proposed_at: datetime | None) -> InvokeResult:
    call = prepare(chaincode=chaincode, function=function, args=args, invoker=invoker,
                   idempotency_key=idempotency_key, signer=signer, signature=signature, proposed_at=proposed_at)
    # Keyless or forged proposals are recognised on resubmission only by their transaction hash,
    # which the step-by-step path looks for before inserting.
    one_statement = connection.vendor == "postgresql" and idempotency_key is not None and call.signature_ok
    nested = connection.in_atomic_block
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return _attempt(call, one_statement=one_statement, nested=nested)
        except _StaleDirectory:
            _directory.clear()
        except IntegrityError as exc:
            if constraint_name(exc) == "account_balance_not_negative" and one_statement and not nested:
                one_statement = False  # the step-by-step path names the account that cannot pay
                continue
            existing = _recorded(call)
            if existing is None:
                raise
            return existing
        except OperationalError as exc:
            if sqlstate(exc) not in RETRYABLE_SQLSTATES or attempt == MAX_ATTEMPTS:
                raise
            logger.info("invoke %s.%s retried after %s", chaincode, function, sqlstate(exc))
            time.sleep(random.uniform(0, 0.002 * attempt))  # let the other party finish
    raise LedgerError(f"{chaincode}.{function} could not be committed after {MAX_ATTEMPTS} attempts")


def _attempt(call: Call, *, one_statement: bool, nested: bool) -> InvokeResult:
    if one_statement and not nested:
        # A contract that reads nothing needs no transaction at all: one autocommitted statement.
        try:
            execution = execute(call, NoReads())
        except NeedsTransaction:
            pass
        else:
            if execution.moves_value_only:
                committed = _commit_transfer(execution)
                if committed is not None:
                    return committed
    if nested:
        execution = execute(call, DatabaseReader())
        if one_statement and execution.moves_value_only:
            # The statement reports a refusal instead of raising, so it needs no savepoint.
            committed = _commit_transfer(execution)
            if committed is not None:
                return committed
        with transaction.atomic():  # a savepoint: a reused key rolls back only this invocation
            return _record(execution.apply(_apply_to_database))
    with transaction.atomic():
        execution = execute(call, DatabaseReader())
        if one_statement and execution.moves_value_only:
            committed = _commit_transfer(execution)
            if committed is not None:
                return committed
        return _record(execution.apply(_apply_to_database))


def _recorded(call: Call) -> InvokeResult | None:
    """The transaction already recorded under the call's idempotency key, answered again."""
    if call.idempotency_key is None:
        return None
    existing = Transaction.objects.filter(invoker_id=call.identity.pk, idempotency_key=call.idempotency_key).first()
    if existing is None:
        return None
    if existing.body_digest != call.digest:
        raise idempotency_conflict(existing.idempotency_key)
    return InvokeResult(tx_id=existing.pk, tx_hash=existing.tx_hash, status=existing.status,
                        reason=existing.reason, result=existing.result, replayed=True)


def _record(execution: Execution) -> InvokeResult:
    """Write an applied execution's transaction, postings, state writes and queue entry."""
    call, proposal, applied = execution.call, execution.proposal, execution.applied or Applied()
    tx_hash = execution.tx_hash()
    if proposal["idempotency_key"] is None:
        # Deterministic signatures make a resubmitted keyless (or forged) proposal hash the same:
        # answer with the recorded transaction instead of a duplicate.
        same = Transaction.objects.filter(tx_hash=tx_hash).first()
        if same is not None:
            return InvokeResult(tx_id=same.pk, tx_hash=same.tx_hash, status=same.status, reason=same.reason,
                                result=same.result, replayed=True)
    tx = Transaction.objects.create(
        chaincode=proposal["chaincode"], function=proposal["function"], args=proposal["args"],
        invoker_id=call.identity.pk, idempotency_key=proposal["idempotency_key"], body_digest=call.digest,
        proposed_at=call.proposed_at, signature=b64(call.signature), status=execution.status,
        reason=execution.reason, result=execution.result, events=execution.effects.events, tx_hash=tx_hash,
    )
    UnsealedTransaction.objects.create(transaction_id=tx.pk)
    if connection.vendor == "postgresql":
        with bound_cursor() as cur:
            copy_rows(cur, "ledger_posting", "transaction_id, account_id, asset_id, amount",
                      [(tx.pk, info.id, info.asset, amount) for info, amount in applied.postings])
            rows = [(ns, key, text, is_delete, version) for (ns, key, _, is_delete, version), text
                    in zip(applied.state_writes, applied.value_texts, strict=True)]
            copy_rows(cur, "ledger_statewrite", "transaction_id, namespace, key, value, is_delete, version",
                      [(tx.pk, *row) for row in rows])
            write_state_after_history(cur, [tx.pk], rows)
        return InvokeResult(tx_id=tx.pk, tx_hash=tx_hash, status=execution.status, reason=execution.reason,
                            result=execution.result)
    if applied.postings:
        Posting.objects.bulk_create(
            Posting(transaction_id=tx.pk, account_id=info.id, asset_id=info.asset, amount=amount)
            for info, amount in applied.postings
        )
    if applied.state_writes:
        StateWrite.objects.bulk_create(
            StateWrite(transaction_id=tx.pk, namespace=ns, key=key, value=value, is_delete=is_delete, version=version)
            for ns, key, value, is_delete, version in applied.state_writes
        )
    return InvokeResult(tx_id=tx.pk, tx_hash=tx_hash, status=execution.status, reason=execution.reason,
                        result=execution.result)


def _apply_to_database(effects: Effects) -> Applied:
    """Lock the touched accounts in id order, check, then write balances and world state.

    Raises ContractError before writing anything, so a refused invocation leaves no trace. Each
    step is one statement however many accounts and keys the effects touch (a disbursement to
    ten thousand households is as many statements as a transfer).
    """
    _, wanted = touched_accounts(effects)
    accounts = select_accounts(wanted, lock=True)
    deltas = check_effects(effects, accounts)

    versions: dict[tuple[str, str], int] = {}
    known = effects.locked_versions  # read under their locks earlier in this transaction
    unknown: dict[str, dict[str, None]] = {}
    for ns, key, _, _ in effects.state_writes:
        version = known.get((ns, key))
        if version is None:
            unknown.setdefault(ns, {})[key] = None
        elif version:
            versions[(ns, key)] = version
    for ns in sorted(unknown):
        keys = list(unknown[ns])
        lock_state_keys(ns, keys)  # every writer of these keys takes them: the versions read stay current
        versions.update({(ns, key): version for key, version in state_versions(ns, keys).items()})

    state_writes: list[list] = []
    for ns, key, value, is_delete in effects.state_writes:
        version = versions[(ns, key)] = versions.get((ns, key), 0) + 1
        state_writes.append([ns, key, value, is_delete, version])
    if connection.vendor != "postgresql" and len(effects.state_texts) == len(state_writes):
        # The ORM writes values, not text: the value as the contract put it (the text the hash
        # covers), even if the contract changed the object afterwards.
        for write, text in zip(state_writes, effects.state_texts, strict=True):
            if text is not None:
                write[2] = orjson.loads(text)
    applied = Applied([(accounts[k], d) for k, d in deltas.items()], state_writes, effects.state_texts)

    if connection.vendor == "postgresql":
        # World state is written with the history (``_record``), once the transaction has an id.
        with bound_cursor() as cur:
            update_balances(cur, [(accounts[k].id, d) for k, d in deltas.items()], relative=True)
    else:
        _apply_row_by_row(deltas, accounts, state_writes)
    return applied


def _apply_row_by_row(deltas: dict[tuple[str, str], int], accounts: dict[tuple[str, str], AccountInfo],
                      state_writes: list[list]) -> None:
    """The writes of ``_apply_to_database`` where arrays cannot be bound (SQLite)."""
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
    latest = {(row[0], row[1]): row for row in state_writes}
    if latest:
        StateEntry.objects.bulk_create(
            [StateEntry(namespace=ns, key=key, value=value, is_deleted=is_delete, version=version)
             for ns, key, value, is_delete, version in latest.values()],
            update_conflicts=True, unique_fields=["namespace", "key"],
            update_fields=["value", "is_deleted", "version"],
        )


# --- one-statement transfers (PostgreSQL) -----------------------------------------------------

class _StaleDirectory(Exception):
    """A cached account id no longer names the same account (e.g. a test database was reset)."""


class _AccountDirectory:
    """Process-wide cache of the immutable part of accounts: (key, asset) -> id, kind, owner.
    Balances are never cached; the write statement re-checks id, key and asset."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], AccountInfo] = {}

    def resolve(self, keys: list[tuple[str, str]], *, fresh: bool = False) -> dict[tuple[str, str], AccountInfo]:
        missing = keys if fresh else [k for k in keys if k not in self._entries]
        if missing:
            if len(self._entries) > 200_000:
                self._entries.clear()
            found = select_accounts(missing, lock=False)
            for key in missing:
                self._entries.pop(key, None)
            self._entries.update(found)
        return {k: self._entries[k] for k in keys if k in self._entries}

    def clear(self) -> None:
        self._entries.clear()


_directory = _AccountDirectory()


def _commit_transfer(execution: Execution) -> InvokeResult | None:
    """A value movement without state writes as one statement: balances, transaction, postings
    and queue entry. None when it cannot be committed so (a missing account, an account that
    cannot pay): nothing was written, and the step-by-step path records the refusal with its
    reason. The transaction id is drawn only after the account rows are locked, so ids order
    transactions that share an account in commit order (the verifier replays in id order)."""
    call, effects, result = execution.call, execution.effects, execution.result
    deltas, wanted = touched_accounts(effects)
    accounts = _directory.resolve(wanted)
    for fresh in (False, True):
        if fresh:  # the cache may be stale: only a fresh read may refuse the invocation
            accounts = _directory.resolve(wanted, fresh=True)
        try:
            check_accounts(wanted, accounts, effects.owner_checks)
        except ContractError:
            if fresh:
                return None
            continue
        postings = [(accounts[k], d) for k, d in deltas.items()]
        tx_hash = Execution(call, call.proposal, execution.status, "", result, effects, Applied(postings)).tx_hash()
        proposal = call.proposal
        fixed = [
            proposal["chaincode"], proposal["function"], json_text(proposal["args"]), call.identity.pk,
            proposal["idempotency_key"], call.digest, call.proposed_at, b64(call.signature), execution.status, "",
            None if result is None else json_text(result), json_text(effects.events), tx_hash,
        ]
        done = _transfer_statement(postings, fixed)
        if done.tx_id is not None:
            return InvokeResult(tx_id=done.tx_id, tx_hash=tx_hash, status=execution.status, reason="", result=result)
        if done.overdrawn:
            return None
        if not done.stale:
            # The key is taken: by this body (a replay) or by another (a conflict).
            return _recorded(call)
    # A cached id named another account even after a fresh read (e.g. a database reset).
    raise _StaleDirectory()


@dataclass(frozen=True)
class _Transfer:
    """What the one-statement transfer did: committed as ``tx_id``, or wrote nothing because a
    cached account id is stale, an account cannot pay, or the idempotency key is taken."""

    tx_id: int | None
    stale: bool
    overdrawn: bool


def _transfer_statement(postings: list[tuple[AccountInfo, int]], fixed: list[Any]) -> _Transfer:
    update_rows = ",".join(["(%s::bigint,%s::text,%s::text,%s::bigint,%s::bigint)"] * len(postings))
    posting_rows = ",".join(["(%s::int,%s::bigint,%s::text,%s::bigint)"] * len(postings))
    account_rows: list[Any] = []
    for info, amount in postings:
        account_rows += [info.id, info.key, info.asset, info.organisation_id, amount]
    params: list[Any] = [*account_rows, *fixed, len(postings), *account_rows]  # lk, tx, its condition, upd
    for n, (info, amount) in enumerate(postings):
        params += [n, info.id, info.asset, amount]
    # ``lk`` locks the rows in id order first, so transfers crossing the same accounts queue
    # instead of deadlocking, and reads each balance as locked (the newest committed). ``tx``
    # is inserted only if every cached id still names its account and every account can pay;
    # a reused idempotency key inserts nothing (ON CONFLICT waits for a concurrent holder of the
    # key to finish). Balances, postings and the queue entry follow ``tx``: either all of it is
    # written or none, and no expected refusal raises an error, so the statement needs no
    # savepoint inside a caller's transaction.
    sql = (
        "WITH lk AS (SELECT a.id, (a.balance + v.d >= 0 OR a.kind = 'issuance') AS fits FROM ledger_account AS a "
        f"JOIN (VALUES {update_rows}) AS v(id, key, asset, org, d) "
        "ON a.id = v.id AND a.key = v.key AND a.asset_id = v.asset AND a.organisation_id = v.org "
        "ORDER BY a.id FOR UPDATE OF a), "
        "tx AS (INSERT INTO ledger_transaction (chaincode, function, args, invoker_id, idempotency_key, body_digest, "
        "proposed_at, signature, status, reason, result, events, tx_hash) "
        "SELECT %s, %s, %s::jsonb, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s "
        "WHERE (SELECT count(*) FILTER (WHERE fits) FROM lk) = %s "
        "ON CONFLICT (invoker_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING id), "
        "upd AS (UPDATE ledger_account AS a SET balance = a.balance + v.d "
        f"FROM (VALUES {update_rows}) AS v(id, key, asset, org, d) "
        "WHERE a.id = v.id AND EXISTS (SELECT 1 FROM tx) RETURNING a.id), "
        "ins AS (INSERT INTO ledger_posting (transaction_id, account_id, asset_id, amount) "
        f"SELECT tx.id, v.account_id, v.asset, v.amount FROM tx, (VALUES {posting_rows}) AS v(ord, account_id, asset, amount) "
        "ORDER BY v.ord RETURNING 1), "
        "queued AS (INSERT INTO ledger_unsealedtransaction (transaction_id) SELECT id FROM tx) "
        "SELECT (SELECT id FROM tx), (SELECT count(*) FROM lk), (SELECT count(*) FILTER (WHERE fits) FROM lk), "
        "(SELECT count(*) FROM upd), (SELECT count(*) FROM ins)"
    )
    # Server-side binding: the statement is prepared on its fifth use per connection (the
    # ``prepare_threshold`` in settings), so the hot path skips client-side quoting and
    # PostgreSQL's parsing and planning.
    with bound_cursor() as cur:
        cur.execute(sql, params)
        tx_id, locked, fitting, _, _ = cur.fetchone()
    return _Transfer(tx_id=tx_id, stale=locked != len(postings), overdrawn=fitting != locked)
