"""Membership replayed from the ledger, for ``ledger_verify``.

The configuration transactions (chaincode ``config``, see ``ledger.chaincodes.config``) write
membership as world state of namespace ``config``. Replaying those writes in transaction order
gives the membership in force at every transaction, against which each transaction is checked:

- its invoker is a registered identity, not revoked, and its signature is checked with the key
  in force then (not the one in the table, which a key rotation or a tamperer may have changed);
- a valid transaction's invoker organisation type, as in force then, is one the contract
  registry allows for ``chaincode.function`` (its endorsement policy);
- a valid configuration transaction obeys the configuration policy in force then (an admin
  under the admin rule; proposals and approvals by member organisations under the majority
  rule); the first one is the bootstrap, signed by the identity it creates;
- under the majority rule, a proposal is applied only with a majority of member organisations
  approving (the approvals stored with it, plus the approver's);
- object rights that hold for every call of a function (``OWNER_RULES``): the account it
  debits belongs to the invoker's organisation as in force then.

At the end the replayed membership is compared with the tables, which are only a view of it:
every organisation (type, name), identity (kind, key, revocation), asset and account (owner,
kind) must match, and rows on one side only are named.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connection

from .chaincodes.config import CHANGES, CONFIG, POLICY_KEY
from .contracts import ContractError, registry
from .keys import ENERGY, device_account, household_account


def _from_args(name: str, asset: str | None = None) -> Callable[[dict, str, str], tuple[str, str] | None]:
    def rule(args: dict, msp: str, identity: str) -> tuple[str, str] | None:
        source, code = args.get(name), asset or args.get("asset")
        return (source, code) if isinstance(source, str) and isinstance(code, str) else None

    return rule


def _fund_source(args: dict, msp: str, identity: str) -> tuple[str, str] | None:
    source = args.get("from") or household_account(msp)
    return (source, ENERGY) if isinstance(source, str) else None


# (chaincode, function) -> the account every valid call debits, which the invoker's
# organisation must own (the contracts' ``require_owner`` on their source, unconditionally).
OWNER_RULES: dict[tuple[str, str], Callable[[dict, str, str], tuple[str, str] | None]] = {
    ("token", "transfer"): _from_args("from"),
    ("token", "burn"): _from_args("from"),
    ("resident", "fund"): _fund_source,
    ("consumer", "burn"): lambda args, msp, identity: (device_account(identity), ENERGY),
}


class MembershipReplay:
    def __init__(self) -> None:
        self.state: dict[str, Any] = {}
        self.started = False
        # Members listed by the bootstrap: the membership of transactions made before a running
        # ledger adopted on-chain membership.
        self.genesis: dict[str, Any] | None = None
        self._load_genesis()

    def _load_genesis(self) -> None:
        with connection.cursor() as cur:
            cur.execute("SELECT t.id FROM ledger_transaction t WHERE t.chaincode = %s AND t.function = 'bootstrap' "
                        "AND t.status = 'valid' ORDER BY t.id LIMIT 1", [CONFIG])
            row = cur.fetchone()
            if row is None:
                return
            cur.execute("SELECT key, value FROM ledger_statewrite WHERE transaction_id = %s AND namespace = %s",
                        [row[0], CONFIG])
            self.genesis = {key: _json(value) for key, value in cur.fetchall()}

    # --- per transaction ------------------------------------------------------------------
    def key_in_force(self, *, invoker: str, table_key: bytes, chaincode: str, function: str, args: Any,
                     status: str, tx_id: int, identity_name: str, problems: list[str]) -> bytes:
        """The key the transaction's signature must verify with; appends what is wrong."""
        msp = invoker.partition("/")[0]
        if not self.started:
            if chaincode == CONFIG and function == "bootstrap" and status == "valid" and isinstance(args, dict):
                if invoker != f"{args.get('msp_id')}/{args.get('admin')}":
                    problems.append(f"the configuration bootstrap is signed by {invoker}, not by the admin it creates")
                try:
                    return bytes.fromhex(str(args.get("public_key")))
                except ValueError:
                    problems.append("the configuration bootstrap names no valid key")
                    return table_key
            if self.genesis is None:
                return table_key  # no configuration history: the final comparison reports it
            membership = self.genesis
        else:
            membership = self.state
        identity = membership.get(f"identity/{invoker}")
        if identity is None:
            problems.append(f"invoker {invoker} is not a registered identity at this transaction (membership on chain)")
            return table_key
        if status == "valid":
            if identity.get("revoked") and membership is self.state:
                problems.append(f"invoker {invoker} was revoked on chain before this valid transaction")
            self._check_policies(membership, msp, invoker, identity_name, chaincode, function, args, problems)
        try:
            return bytes.fromhex(identity["public_key"])
        except (KeyError, TypeError, ValueError):
            problems.append(f"identity {invoker} has no valid key on chain")
            return table_key

    def _check_policies(self, membership: dict[str, Any], msp: str, invoker: str, identity_name: str,
                        chaincode: str, function: str, args: Any, problems: list[str]) -> None:
        org = membership.get(f"org/{msp}") or {}
        org_type = org.get("org_type")
        try:
            fn = registry.resolve(chaincode, function)
        except ContractError as exc:
            problems.append(f"a valid transaction of {exc.reason}")
            return
        if fn.orgs is not None and org_type not in fn.orgs:
            problems.append(f"endorsement policy: {chaincode}.{function} may be invoked by "
                            f"{', '.join(sorted(fn.orgs))}, not by {msp} of type {org_type} (in force then)")
        if chaincode == CONFIG and membership is self.state:
            policy = self.state.get(POLICY_KEY) or {}
            if function in CHANGES:
                if policy.get("rule") != "admin" or invoker not in policy.get("admins", []):
                    problems.append(f"configuration policy: {invoker} may not make {function} under the policy "
                                    f"in force ({policy.get('rule')})")
            elif function in ("propose", "approve") and msp not in policy.get("members", []):
                problems.append(f"configuration policy: {msp} is not a member organisation that may {function}")
            elif function == "bootstrap":
                problems.append("a second configuration bootstrap")
        rule = OWNER_RULES.get((chaincode, function))
        account = rule(args, msp, identity_name) if rule is not None and isinstance(args, dict) else None
        if account is not None:
            owner = (membership.get(f"account/{account[1]}/{account[0]}") or {}).get("organisation")
            if owner != msp:
                problems.append(f"object rights: {chaincode}.{function} debits {account[1]} account {account[0]!r}, "
                                f"owned by {owner} (in force then), not the invoker's {msp}")

    def majority_problems(self, *, chaincode: str, function: str, status: str, args: Any, invoker: str,
                          writes: list[list]) -> list[str]:
        """Under the majority rule a proposal is applied only once more than half of the member
        organisations approve it: the approvals stored with it plus the approver's. Before
        ``apply`` of the same transaction."""
        if chaincode != CONFIG or function not in ("propose", "approve") or status != "valid" \
                or not isinstance(args, dict):
            return []
        proposal = f"proposal/{args.get('id')}"
        if not any(ns == CONFIG and key != proposal for ns, key, *_ in writes):
            return []  # still pending
        members = set((self.state.get(POLICY_KEY) or {}).get("members") or [])
        pending = self.state.get(proposal) if function == "approve" else None
        approvals = set((pending or {}).get("approvals") or []) | {invoker.partition("/")[0]}
        if 2 * len(approvals & members) <= len(members):
            return [f"configuration policy: proposal {args.get('id')} applied with {len(approvals & members)} of "
                    f"{len(members)} member organisations approving, not a majority"]
        return []

    def apply(self, writes: list[list]) -> None:
        """A transaction's state writes ([namespace, key, value, is_delete, version])."""
        for ns, key, value, is_delete, _ in writes:
            if ns != CONFIG:
                continue
            if is_delete:
                self.state.pop(key, None)
            else:
                self.state[key] = value
            if key == POLICY_KEY:
                self.started = True

    # --- the tables -----------------------------------------------------------------------
    def compare_tables(self) -> list[str]:
        """Differences between the replayed membership and the tables, each named."""
        problems: list[str] = []
        chain = self.state
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM ledger_organisation")
            if not self.started:
                if cur.fetchone()[0]:
                    problems.append("membership has no configuration history: organisations exist in the tables "
                                    "but no configuration bootstrap is on the ledger")
                return problems
            cur.fetchone()
            cur.execute("SELECT msp_id, name, org_type FROM ledger_organisation ORDER BY msp_id")
            table = {f"org/{msp}": {"name": name, "org_type": org_type} for msp, name, org_type in cur.fetchall()}
            _compare(problems, "organisation", "org/", table, chain, ("org_type", "name"))
            cur.execute("SELECT o.msp_id, i.name, i.kind, i.public_key, i.revoked_at IS NOT NULL "
                        "FROM ledger_identity i LEFT JOIN ledger_organisation o ON o.id = i.organisation_id")
            table = {f"identity/{msp}/{name}": {"kind": kind, "public_key": bytes(key).hex(), "revoked": revoked}
                     for msp, name, kind, key, revoked in cur.fetchall()}
            replayed = {k: {**v, "revoked": bool(v.get("revoked"))} for k, v in chain.items()
                        if k.startswith("identity/")}
            _compare(problems, "identity", "identity/", table, replayed, ("kind", "public_key", "revoked"))
            cur.execute("SELECT code, name, scale, display_unit FROM ledger_asset")
            table = {f"asset/{code}": {"name": name, "scale": scale, "display_unit": unit}
                     for code, name, scale, unit in cur.fetchall()}
            _compare(problems, "asset", "asset/", table, chain, ("name", "scale", "display_unit"))
            cur.execute("SELECT a.key, a.asset_id, a.kind, o.msp_id FROM ledger_account a "
                        "LEFT JOIN ledger_organisation o ON o.id = a.organisation_id")
            table = {f"account/{asset}/{key}": {"kind": kind, "organisation": msp}
                     for key, asset, kind, msp in cur.fetchall()}
            _compare(problems, "account", "account/", table, chain, ("organisation", "kind"))
        return problems


_WORDS = {"org_type": "type", "public_key": "public key", "organisation": "owner", "display_unit": "display unit"}


def _compare(problems: list[str], what: str, prefix: str, table: dict[str, dict], chain: dict[str, Any],
             fields: tuple[str, ...]) -> None:
    on_chain = {k: v for k, v in chain.items() if k.startswith(prefix)}
    for key in sorted(set(table) | set(on_chain)):
        name = key[len(prefix):]
        row, replayed = table.get(key), on_chain.get(key)
        if replayed is None:
            problems.append(f"{what} {name} is in the table but not on chain (a forged row)")
        elif row is None:
            problems.append(f"{what} {name} is on chain but missing from the table (a deleted row)")
        else:
            for f in fields:
                if row.get(f) == replayed.get(f):
                    continue
                if f == "public_key":
                    problems.append(f"{what} {name}: the public key in the table is not the key in force on chain")
                else:
                    problems.append(f"{what} {name}: {_WORDS.get(f, f)} is {row.get(f)!r} in the table but "
                                    f"{replayed.get(f)!r} on chain")


def _json(value: Any) -> Any:
    import json

    return json.loads(value) if isinstance(value, (str, bytes)) else value
