"""``config``: membership and ownership as ledger transactions (as Fabric's channel
configuration). Organisations and their type, identities with their keys, key rotation and
revocation, assets and account ownership exist on the ledger as world state of namespace
``config``; the tables ``Organisation``, ``Identity``, ``Asset`` and ``Account`` (all but the
balance) are a view of it that ``ledger.services`` keeps, and ``ledger_verify`` replays.

State: ``org/<msp>`` {name, org_type}; ``identity/<msp>/<name>`` {kind, public_key (hex),
revoked (null or the revoking transaction's time)}; ``asset/<code>`` {name, scale,
display_unit, issuer}; ``account/<asset>/<key>`` {kind, organisation}; ``policy`` {rule,
admins, members}; ``proposal/<id>`` {function, args, proposer, approvals} under the majority rule.

Policy: rule ``admin`` lets the identities named in ``admins`` make every change; rule
``majority`` takes a proposal (``propose``) approved (``approve``) by more than half of the
organisations in ``members`` (any live identity of a member organisation speaks for it). The
first transaction of the namespace is ``bootstrap``, which creates the administrator's
organisation and identity (with the key that signs it) and the policy: a genesis block.
Every function returns the writes it made as ``{"applied": [[key, value], ...]}``.
"""

from __future__ import annotations

from typing import Any

from ..contracts import Context, Contract, ContractError, registry
from ..crypto import usable_public_key
from ..documents import timestamp_text

CONFIG = "config"
POLICY_KEY = "policy"
ORG_TYPES = frozenset({"utility", "grid", "distributor", "producer", "bank", "charity", "agent", "household",
                       "auditor", "operator"})
IDENTITY_KINDS = frozenset({"user", "device", "service"})
ACCOUNT_KINDS = frozenset({"holder", "device", "pool", "escrow"})  # issuance comes with its asset
ISSUANCE = "issuance"

config = registry.register(Contract(CONFIG, "Membership and ownership: organisations, identities, keys, assets, "
                                            "accounts, and the policy that changes them."))


def org_key(msp_id: str) -> str:
    return f"org/{msp_id}"


def identity_key(qualified: str) -> str:
    return f"identity/{qualified}"


def asset_key(code: str) -> str:
    return f"asset/{code}"


def account_key(asset: str, key: str) -> str:
    return f"account/{asset}/{key}"


# --- the changes (pure checks on the state they read; return the writes) -----------------------

Writes = list[list[Any]]


def _text(args: dict[str, Any], name: str, max_length: int = 200) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise ContractError(f"argument {name!r} must be a non-empty string of at most {max_length} characters")
    return value


def _choice(args: dict[str, Any], name: str, choices: frozenset[str]) -> str:
    value = _text(args, name, 20)
    if value not in choices:
        raise ContractError(f"argument {name!r} must be one of {', '.join(sorted(choices))}")
    return value


def _public_key(args: dict[str, Any]) -> str:
    value = _text(args, "public_key", 64)
    try:
        if len(bytes.fromhex(value)) != 32 or value != value.lower():
            raise ValueError
    except ValueError:
        raise ContractError("argument 'public_key' must be 32 bytes in lowercase hex (Ed25519)") from None
    if not usable_public_key(bytes.fromhex(value)):
        # A point of small order would verify signatures of messages nobody signed.
        raise ContractError("argument 'public_key' is not a usable Ed25519 key (not a canonical point of the "
                            "curve's prime-order group)")
    return value


def _identity_name(args: dict[str, Any]) -> tuple[str, str]:
    qualified = _text(args, "identity", 165)
    msp, _, name = qualified.partition("/")
    if not msp or not name:
        raise ContractError("argument 'identity' must be '<msp_id>/<name>'")
    return msp, name


def _live_identity(state: dict[str, Any], qualified: str) -> dict[str, Any]:
    current = state.get(identity_key(qualified))
    if current is None:
        raise ContractError(f"no identity {qualified}")
    if current.get("revoked"):
        raise ContractError(f"identity {qualified} is revoked")
    return current


def _create_organisation(ctx: Context, args: dict[str, Any]) -> Writes:
    msp, name = _text(args, "msp_id", 64), _text(args, "name")
    org_type = _choice(args, "org_type", ORG_TYPES)
    if ctx.get_state(org_key(msp)) is not None:
        raise ContractError(f"organisation {msp} already exists")
    return [[org_key(msp), {"name": name, "org_type": org_type}]]


def _set_organisation_type(ctx: Context, args: dict[str, Any]) -> Writes:
    msp, org_type = _text(args, "msp_id", 64), _choice(args, "org_type", ORG_TYPES)
    current = ctx.get_state(org_key(msp))
    if current is None:
        raise ContractError(f"no organisation {msp}")
    return [[org_key(msp), {**current, "org_type": org_type}]]


def _register_identity(ctx: Context, args: dict[str, Any]) -> Writes:
    msp, name = _identity_name(args)
    kind, public_key = _choice(args, "kind", IDENTITY_KINDS), _public_key(args)
    # Only the key written is locked: what it refers to is read, not changed.
    if ctx.peek_state(org_key(msp)) is None:
        raise ContractError(f"no organisation {msp}")
    if ctx.get_state(identity_key(f"{msp}/{name}")) is not None:
        raise ContractError(f"identity {msp}/{name} already exists")
    return [[identity_key(f"{msp}/{name}"), {"kind": kind, "public_key": public_key, "revoked": None}]]


def _rotate_key(ctx: Context, args: dict[str, Any]) -> Writes:
    msp, name = _identity_name(args)
    public_key = _public_key(args)
    current = _live_identity({identity_key(f"{msp}/{name}"): ctx.get_state(identity_key(f"{msp}/{name}"))},
                             f"{msp}/{name}")
    return [[identity_key(f"{msp}/{name}"), {**current, "public_key": public_key}]]


def _revoke_identity(ctx: Context, args: dict[str, Any]) -> Writes:
    msp, name = _identity_name(args)
    current = _live_identity({identity_key(f"{msp}/{name}"): ctx.get_state(identity_key(f"{msp}/{name}"))},
                             f"{msp}/{name}")
    return [[identity_key(f"{msp}/{name}"), {**current, "revoked": timestamp_text(ctx.now)}]]


def _create_asset(ctx: Context, args: dict[str, Any]) -> Writes:
    code, name = _text(args, "code", 10), _text(args, "name", 100)
    display_unit, issuer = _text(args, "display_unit", 10), _text(args, "issuer", 64)
    scale = args.get("scale")
    if isinstance(scale, bool) or not isinstance(scale, int) or not 0 <= scale <= 18:
        raise ContractError("argument 'scale' must be an integer from 0 to 18")
    if ctx.get_state(asset_key(code)) is not None:
        raise ContractError(f"asset {code} already exists")
    if ctx.peek_state(org_key(issuer)) is None:
        raise ContractError(f"no organisation {issuer}")
    return [[asset_key(code), {"name": name, "scale": scale, "display_unit": display_unit, "issuer": issuer}],
            [account_key(code, ISSUANCE), {"kind": ISSUANCE, "organisation": issuer}]]


def _open_account(ctx: Context, args: dict[str, Any]) -> Writes:
    key, asset, organisation = _text(args, "key", 120), _text(args, "asset", 10), _text(args, "organisation", 64)
    kind = _choice(args, "kind", ACCOUNT_KINDS)
    if key == ISSUANCE:
        raise ContractError("issuance accounts are opened with their asset")
    found = ctx.peek_states([asset_key(asset), org_key(organisation)])
    if found[asset_key(asset)] is None:
        raise ContractError(f"no asset {asset}")
    if found[org_key(organisation)] is None:
        raise ContractError(f"no organisation {organisation}")
    if ctx.get_state(account_key(asset, key)) is not None:
        raise ContractError(f"{asset} account {key!r} already exists")
    return [[account_key(asset, key), {"kind": kind, "organisation": organisation}]]


def _transfer_account(ctx: Context, args: dict[str, Any]) -> Writes:
    key, asset, organisation = _text(args, "key", 120), _text(args, "asset", 10), _text(args, "organisation", 64)
    current = ctx.get_state(account_key(asset, key))
    if current is None:
        raise ContractError(f"no {asset} account {key!r}")
    if ctx.peek_state(org_key(organisation)) is None:
        raise ContractError(f"no organisation {organisation}")
    return [[account_key(asset, key), {**current, "organisation": organisation}]]


def _set_policy(ctx: Context, args: dict[str, Any]) -> Writes:
    return [[POLICY_KEY, _policy_value(ctx, args)]]


def _policy_value(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    rule = _choice(args, "rule", frozenset({"admin", "majority"}))
    admins, members = args.get("admins", []), args.get("members", [])
    if not (isinstance(admins, list) and all(isinstance(a, str) and "/" in a for a in admins)):
        raise ContractError("argument 'admins' must be a list of '<msp_id>/<name>'")
    if not (isinstance(members, list) and all(isinstance(m, str) and m for m in members)):
        raise ContractError("argument 'members' must be a list of organisation MSP ids")
    if rule == "admin" and not admins:
        raise ContractError("the admin rule needs at least one admin")
    if rule == "majority" and not members:
        raise ContractError("the majority rule needs member organisations")
    known = ctx.peek_states([identity_key(a) for a in admins] + [org_key(m) for m in members])
    for name, value in known.items():
        if value is None:
            raise ContractError(f"no {name.replace('/', ' ', 1)}")
    return {"rule": rule, "admins": sorted(set(admins)), "members": sorted(set(members))}


CHANGES = {
    "createOrganisation": _create_organisation,
    "setOrganisationType": _set_organisation_type,
    "registerIdentity": _register_identity,
    "rotateKey": _rotate_key,
    "revokeIdentity": _revoke_identity,
    "createAsset": _create_asset,
    "openAccount": _open_account,
    "transferAccount": _transfer_account,
    "setPolicy": _set_policy,
}


def _apply(ctx: Context, writes: Writes) -> dict[str, Any]:
    for key, value in writes:
        ctx.put_state(key, value)
    return {"applied": writes}


def _policy(ctx: Context) -> dict[str, Any]:
    policy = ctx.peek_state(POLICY_KEY)
    if policy is None:
        raise ContractError("the configuration has no policy yet: its first transaction is bootstrap")
    return policy


def _change(function: str):
    def run(ctx: Context) -> dict[str, Any]:
        policy = _policy(ctx)
        if policy["rule"] != "admin":
            raise ContractError(f"configuration policy: {function} needs a proposal approved by a majority of "
                                f"{', '.join(policy['members'])}")
        if ctx.invoker.name not in policy["admins"]:
            raise ContractError(f"configuration policy: {ctx.invoker.name} is not a configuration admin")
        return _apply(ctx, CHANGES[function](ctx, ctx.args))

    run.__doc__ = f"{function} (configuration admins only, or through a majority proposal)."
    return run


for _name in CHANGES:
    config.function(_name)(_change(_name))


@config.function("bootstrap")
def bootstrap(ctx: Context) -> dict[str, Any]:
    """The namespace's first transaction: the administrator's organisation and identity, signed
    by that identity's own key, and the admin policy naming it; with the members that already
    exist when a running ledger adopts on-chain membership (``genesis``: [[key, value], ...])."""
    if ctx.peek_state(POLICY_KEY) is not None:
        raise ContractError("the configuration is already bootstrapped")
    msp, name = _text(ctx.args, "msp_id", 64), _text(ctx.args, "name")
    org_type = _choice(ctx.args, "org_type", ORG_TYPES)
    admin = _text(ctx.args, "admin", 100)
    public_key = _public_key(ctx.args)
    if ctx.invoker.name != f"{msp}/{admin}":
        raise ContractError(f"bootstrap must be signed by the identity it creates, {msp}/{admin}")
    writes: Writes = [
        [org_key(msp), {"name": name, "org_type": org_type}],
        [identity_key(f"{msp}/{admin}"), {"kind": "service", "public_key": public_key, "revoked": None}],
        [POLICY_KEY, {"rule": "admin", "admins": [f"{msp}/{admin}"], "members": []}],
    ]
    genesis = ctx.args.get("genesis", [])
    if not isinstance(genesis, list):
        raise ContractError("argument 'genesis' must be a list of [key, value]")
    taken = {w[0] for w in writes}
    for entry in genesis:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)
                and entry[0].startswith(("org/", "identity/", "asset/", "account/")) and entry[0] not in taken
                and isinstance(entry[1], dict)):
            raise ContractError("each genesis entry is [org/…, identity/…, asset/… or account/… key, value]")
        taken.add(entry[0])
        writes.append(entry)
    return _apply(ctx, writes)


@config.function("propose")
def propose(ctx: Context) -> dict[str, Any]:
    """Under the majority rule: propose a change ({id, function, args}); the proposer's
    organisation approves it."""
    policy = _policy(ctx)
    if policy["rule"] != "majority":
        raise ContractError("configuration policy: proposals are for the majority rule")
    if ctx.invoker.msp_id not in policy["members"]:
        raise ContractError(f"configuration policy: {ctx.invoker.msp_id} is not a member organisation")
    proposal_id, function = _text(ctx.args, "id", 64), _text(ctx.args, "function", 50)
    args = ctx.args.get("args")
    if function not in CHANGES or not isinstance(args, dict):
        raise ContractError(f"argument 'function' must be one of {', '.join(CHANGES)}, with 'args' an object")
    if ctx.get_state(f"proposal/{proposal_id}") is not None:
        raise ContractError(f"proposal {proposal_id} already exists")
    # A change that could not apply now is refused now, not left for the members to approve in
    # vain (approval checks it again against the state then).
    CHANGES[function](ctx, args)
    pending = {"function": function, "args": args, "proposer": ctx.invoker.name, "approvals": [ctx.invoker.msp_id]}
    return _decide(ctx, policy, proposal_id, pending, stored=False)


@config.function("approve")
def approve(ctx: Context) -> dict[str, Any]:
    """Under the majority rule: a member organisation approves a pending proposal ({id}); it is
    applied as soon as more than half of the member organisations approve it."""
    policy = _policy(ctx)
    if policy["rule"] != "majority":
        raise ContractError("configuration policy: proposals are for the majority rule")
    if ctx.invoker.msp_id not in policy["members"]:
        raise ContractError(f"configuration policy: {ctx.invoker.msp_id} is not a member organisation")
    proposal_id = _text(ctx.args, "id", 64)
    pending = ctx.get_state(f"proposal/{proposal_id}")
    if pending is None:
        raise ContractError(f"no pending proposal {proposal_id}")
    if ctx.invoker.msp_id in pending["approvals"]:
        raise ContractError(f"{ctx.invoker.msp_id} already approved proposal {proposal_id}")
    pending = {**pending, "approvals": sorted([*pending["approvals"], ctx.invoker.msp_id])}
    return _decide(ctx, policy, proposal_id, pending, stored=True)


def _decide(ctx: Context, policy: dict[str, Any], proposal_id: str, pending: dict[str, Any], *,
            stored: bool) -> dict[str, Any]:
    if 2 * len(set(pending["approvals"]) & set(policy["members"])) <= len(policy["members"]):
        ctx.put_state(f"proposal/{proposal_id}", pending)
        return {"applied": [], "pending": proposal_id, "approvals": pending["approvals"]}
    writes = CHANGES[pending["function"]](ctx, pending["args"])
    if stored:
        ctx.del_state(f"proposal/{proposal_id}")
    return {**_apply(ctx, writes), "approvals": pending["approvals"]}
