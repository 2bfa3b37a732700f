"""Membership in force and the rights that depend on it (docs/ledger-format.md §7): the
configuration policy of ``config`` transactions and the debit rights of the functions that move
value out of an account the invoker names.

The membership in force at a transaction is the ``config`` world state replayed so far; before
the configuration bootstrap it is the genesis membership the bootstrap lists (the export's
manifest states it, and the bootstrap, when replayed, must list the same), else the export's
snapshot of the tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CONFIG = "config"
POLICY_KEY = "policy"
ENERGY = "k"
# Config functions that are not changes of membership themselves.
PROCEDURE = frozenset({"bootstrap", "propose", "approve"})
BOOTSTRAP = f"{CONFIG}.bootstrap"
CONFIG_PREFIX = CONFIG + "."
MAJORITY_STEPS = frozenset({f"{CONFIG}.propose", f"{CONFIG}.approve"})


def _named_source(arg: str, asset: str | None = None) -> Callable[[dict, str, str], tuple[str, str] | None]:
    def rule(args: dict, msp: str, identity: str) -> tuple[str, str] | None:
        source, code = args.get(arg), asset or args.get("asset")
        return (source, code) if isinstance(source, str) and isinstance(code, str) else None

    return rule


def _fund_source(args: dict, msp: str, identity: str) -> tuple[str, str] | None:
    source = args.get("from") or f"household:{msp}"
    return (source, ENERGY) if isinstance(source, str) else None


# "<chaincode>.<function>" -> the (account key, asset) every valid call debits, which the
# invoker's organisation must own in the membership in force.
DEBITS: dict[str, Callable[[dict, str, str], tuple[str, str] | None]] = {
    "token.transfer": _named_source("from"),
    "token.burn": _named_source("from"),
    "resident.fund": _fund_source,
    "consumer.burn": lambda args, msp, identity: (f"device:{identity}", ENERGY),
}


def needs_args(name: str) -> bool:
    """Whether the rights of ``name`` depend on its arguments (phase 1 keeps them only then)."""
    return name in DEBITS or name.startswith(CONFIG_PREFIX)


class Membership:
    """Organisation types, identity keys and account owners in force."""

    def __init__(self, snapshot: dict | None, genesis: dict | None = None):
        # Without a snapshot of organisations (the API serves none), a member that predates config
        # transactions has no known type, and its policies go unchecked.
        self.knows_every_org = bool(snapshot and "organisations" in snapshot)
        snapshot = snapshot or {}
        self.snapshot_orgs = {o["msp_id"]: o for o in snapshot.get("organisations", [])}
        self.snapshot_identities = {i["identity"]: i for i in snapshot.get("identities", [])}
        self.snapshot_accounts = {(a["asset"], a["key"]): a for a in snapshot.get("accounts", [])}
        self.config: dict[str, Any] = {}
        self.started = False  # the bootstrap (the first write of ``policy``) is replayed
        self.genesis_entries: list | None = genesis.get("members") if isinstance(genesis, dict) else None
        self.genesis: dict[str, Any] | None = (
            {e[0]: e[1] for e in self.genesis_entries if isinstance(e, list) and len(e) == 2}
            if isinstance(self.genesis_entries, list) else None)

    def _in_force(self) -> dict[str, Any] | None:
        return self.config if self.started else self.genesis

    def apply(self, key: str, value: Any, is_delete: bool) -> None:
        if is_delete:
            self.config.pop(key, None)
        else:
            self.config[key] = value

    def apply_writes(self, name: str, status: str, writes: list) -> list[str]:
        """A transaction's ``config`` writes; the bootstrap's must be the stated genesis."""
        if not writes:
            return []
        config_writes = [(w[1], w[5], w[3]) for w in writes if w[0] == CONFIG]
        for key, value, is_delete in config_writes:
            self.apply(key, value, is_delete)
        if self.started or not any(key == POLICY_KEY for key, _, _ in config_writes):
            return []
        self.started = True
        if self.genesis is None or name != BOOTSTRAP or status != "valid":
            return []
        written = {key: value for key, value, is_delete in config_writes if not is_delete}
        if written != self.genesis:
            return ["the configuration bootstrap's writes differ from the genesis membership the export states"]
        return []

    def unconfirmed_genesis(self) -> str | None:
        if self.genesis is not None and not self.started:
            return "the export states a genesis membership, but the chain has no configuration bootstrap"
        return None

    def org_type(self, msp_id: str) -> str | None:
        view = self._in_force()
        if view is not None:
            org = view.get(f"org/{msp_id}")
            return org.get("org_type") if isinstance(org, dict) else None
        org = self.snapshot_orgs.get(msp_id)
        return org.get("org_type") if org else None

    def identity(self, name: str) -> dict | None:
        """The identity's entry in force (None: unknown, or it predates config transactions)."""
        view = self._in_force()
        entry = view.get(f"identity/{name}") if view is not None else None
        return entry if isinstance(entry, dict) else None

    def account_kind(self, key: str, asset: str) -> str | None:
        entry = self.config.get(f"account/{asset}/{key}")
        if isinstance(entry, dict):
            return entry.get("kind")
        account = self.snapshot_accounts.get((asset, key))
        return account.get("kind") if account else None

    def account_owner(self, key: str, asset: str) -> str | None:
        view = self._in_force()
        if view is not None:
            entry = view.get(f"account/{asset}/{key}")
            return entry.get("organisation") if isinstance(entry, dict) else None
        account = self.snapshot_accounts.get((asset, key))
        return account.get("organisation") if account else None

    # --- rights ---------------------------------------------------------------------------------
    def rights(self, name: str, invoker: str, args: Any, status: str, stated_key: str | None) -> list[str]:
        """What is wrong with a transaction of ``name`` by ``invoker`` in the membership in force:
        an invoker not registered, and for a valid one the configuration policy and the debit
        rights. The bootstrap registers the identity that signs it, with the key it names."""
        if name == BOOTSTRAP and not self.started:
            if status != "valid" or not isinstance(args, dict):
                return []
            problems = []
            if invoker != f"{args.get('msp_id')}/{args.get('admin')}":
                problems.append(f"the configuration bootstrap is signed by {invoker}, not by the admin it creates")
            if stated_key is not None and stated_key != args.get("public_key"):
                problems.append(f"the configuration bootstrap is signed with key {stated_key}, not the key it "
                                f"registers ({args.get('public_key')})")
            return problems
        view = self._in_force()
        if view is None:
            return []
        problems = []
        if not isinstance(view.get(f"identity/{invoker}"), dict):
            problems.append(f"invoker {invoker} is not a registered identity at this transaction (membership "
                            "on chain)")
        if status != "valid":
            return problems
        rule = DEBITS.get(name)
        if rule is None and not name.startswith(CONFIG_PREFIX):
            return problems
        msp, _, identity_name = invoker.partition("/")
        chaincode, _, function = name.partition(".")
        if chaincode == CONFIG and self.started:
            problems += self._configuration_policy(function, invoker, msp, args)
        account = rule(args, msp, identity_name) if rule is not None and isinstance(args, dict) else None
        if account is not None:
            owner = self.account_owner(*account)
            if owner != msp:
                problems.append(f"object rights: {name} debits {account[1]} account {account[0]!r}, owned by "
                                f"{owner} (in force then), not the invoker's {msp}")
        return problems

    def _configuration_policy(self, function: str, invoker: str, msp: str, args: Any) -> list[str]:
        policy = self.config.get(POLICY_KEY)
        policy = policy if isinstance(policy, dict) else {}
        rule, members = policy.get("rule"), policy.get("members") or []
        if function == "bootstrap":
            return ["a second configuration bootstrap"]
        if function not in PROCEDURE:
            if rule != "admin" or invoker not in (policy.get("admins") or []):
                return [f"configuration policy: {invoker} may not make {function} under the policy in force "
                        f"({rule})"]
            return []
        if rule != "majority" or msp not in members:
            return [f"configuration policy: {msp} is not a member organisation that may {function}"]
        return []

    def majority_problems(self, name: str, status: str, args: Any, invoker: str, writes: list) -> list[str]:
        """Under the majority rule, a proposal is applied only with more than half of the member
        organisations approving: the approvals stored with it, plus the approver's. Call before
        the transaction's writes are applied."""
        if name not in MAJORITY_STEPS or status != "valid" or not isinstance(args, dict):
            return []
        proposal_key = f"proposal/{args.get('id')}"
        applied = [w for w in writes if w[0] == CONFIG and w[1] != proposal_key]
        if not applied:
            return []
        policy = self.config.get(POLICY_KEY)
        members = set(policy.get("members") or []) if isinstance(policy, dict) else set()
        msp = invoker.partition("/")[0]
        pending = self.config.get(proposal_key) if name.endswith(".approve") else None
        approvals = set((pending or {}).get("approvals") or []) if isinstance(pending, dict) else set()
        approvals.add(msp)
        if 2 * len(approvals & members) <= len(members):
            return [f"configuration policy: proposal {args.get('id')} applied with {len(approvals & members)} of "
                    f"{len(members)} member organisations approving, not a majority"]
        return []
