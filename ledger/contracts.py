"""The chaincode API: a registry of contracts, their endorsement policies and the context
they run in. Contracts are plain Python: they read arguments, state and balances through the
context and record postings, state writes and events on it; the ledger service applies them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, overload

from .canonical import CanonicalError, canonical_json

ISSUANCE = "issuance"


class ContractError(Exception):
    """A contract refused the invocation; it is recorded as rejected with this reason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Invoker:
    identity_id: int
    name: str  # "<msp_id>/<identity name>"
    msp_id: str
    org_id: int
    org_type: str
    kind: str = "user"  # user, device or service
    identity_name: str = ""


@dataclass(frozen=True)
class AccountInfo:
    id: int
    key: str
    asset: str
    kind: str
    organisation_id: int
    balance: int


class LedgerReader(Protocol):
    def account(self, key: str, asset: str, *, lock: bool) -> AccountInfo | None: ...

    def accounts(self, keys: list[tuple[str, str]], *, lock: bool) -> dict[tuple[str, str], AccountInfo]: ...

    def state(self, namespace: str, key: str, *, lock: bool) -> tuple[Any, int, bool] | None: ...

    def states(self, namespace: str, keys: list[str], *, lock: bool, span: bool = False,
               fields: tuple[str, ...] | None = None, shared: bool = False) -> dict[str, tuple[Any, int, bool]]: ...


@dataclass
class ContractFunction:
    fn: Callable[[Context], Any]
    orgs: frozenset[str] | None  # None: any organisation type may invoke
    description: str
    namespace: str = ""
    # (args, invoker) -> (accounts, state keys) the call will read: lets a batch lock them all
    # in one query. Optional; anything not announced is read (and locked) on demand.
    touches: Callable[[dict[str, Any], Invoker], tuple[list[tuple[str, str]], list[str]]] | None = None


class Contract:
    """A named chaincode; functions are registered with ``@contract.function(...)``."""

    def __init__(self, name: str, description: str = "", *, namespace: str | None = None):
        self.name = name
        self.description = description
        # Chaincodes that serve one domain may share a world-state namespace.
        self.namespace = namespace or name
        self.functions: dict[str, ContractFunction] = {}

    def function(self, name: str | None = None, *, orgs: Iterable[str] | None = None, touches=None):
        def register(fn: Callable[[Context], Any]) -> Callable[[Context], Any]:
            self.functions[name or fn.__name__] = ContractFunction(
                fn=fn, orgs=frozenset(orgs) if orgs is not None else None, description=(fn.__doc__ or "").strip(),
                namespace=self.namespace, touches=touches,
            )
            return fn

        return register


class Registry:
    def __init__(self) -> None:
        self._contracts: dict[str, Contract] = {}

    def register(self, contract: Contract) -> Contract:
        if contract.name in self._contracts and self._contracts[contract.name] is not contract:
            raise ValueError(f"chaincode {contract.name!r} is already registered")
        self._contracts[contract.name] = contract
        return contract

    def resolve(self, chaincode: str, function: str) -> ContractFunction:
        contract = self._contracts.get(chaincode)
        if contract is None:
            raise ContractError(f"unknown chaincode {chaincode!r}")
        fn = contract.functions.get(function)
        if fn is None:
            raise ContractError(f"chaincode {chaincode!r} has no function {function!r}")
        return fn

    def contracts(self) -> list[Contract]:
        return list(self._contracts.values())


registry = Registry()


def check_policy(fn: ContractFunction, invoker: Invoker, chaincode: str, function: str) -> None:
    if fn.orgs is not None and invoker.org_type not in fn.orgs:
        allowed = ", ".join(sorted(fn.orgs))
        raise ContractError(
            f"endorsement policy: {chaincode}.{function} may be invoked by {allowed}, not {invoker.org_type}"
        )


@dataclass
class Effects:
    """What a contract did, in the order it did it."""

    # (account key, asset, signed amount); merged per account when applied
    postings: list[tuple[str, str, int]] = field(default_factory=list)
    # (namespace, key, value, is_delete)
    state_writes: list[tuple[str, str, Any, bool]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    # (account key, asset, organisation id that must own it)
    owner_checks: list[tuple[str, str, int]] = field(default_factory=list)
    # (namespace, key) -> version (0: absent) of world-state entries read under their lock in
    # this invocation: an applier holding that same transaction needs neither lock nor re-read
    # them to version its writes (a station's slot writes a thousand keys it has just read).
    locked_versions: dict[tuple[str, str], int] = field(default_factory=dict)
    # The canonical JSON of each state write's value (None for a delete), in step with
    # ``state_writes``: made once by ``put_state``'s check, and reused for the transaction's hash
    # and the rows written, so the value is written as it was when the contract put it.
    state_texts: list[bytes | None] = field(default_factory=list)


class Context:
    """What a running contract sees. Amounts are integers in the asset's stored unit."""

    def __init__(self, *, chaincode: str, function: str, args: dict[str, Any], invoker: Invoker,
                 now: datetime, reader: LedgerReader, namespace: str | None = None):
        self.chaincode = chaincode
        self.namespace = namespace or chaincode
        self.function = function
        self.args = args
        self.invoker = invoker
        self.now = now
        self._reader = reader
        self.effects = Effects()
        self._state_cache: dict[str, Any] = {}
        self._locked: dict[tuple[str, str], AccountInfo] = {}

    # --- arguments -------------------------------------------------------------------------
    @overload
    def arg_str(self, name: str, *, required: Literal[True] = True, max_length: int = 200) -> str: ...

    @overload
    def arg_str(self, name: str, *, required: bool, max_length: int = 200) -> str | None: ...

    def arg_str(self, name: str, *, required: bool = True, max_length: int = 200) -> str | None:
        value = self.args.get(name)
        if value is None:
            if required:
                raise ContractError(f"argument {name!r} is required")
            return None
        if not isinstance(value, str) or not value or len(value) > max_length:
            raise ContractError(f"argument {name!r} must be a non-empty string of at most {max_length} characters")
        return value

    @overload
    def arg_int(self, name: str, *, positive: bool = True, required: Literal[True] = True) -> int: ...

    @overload
    def arg_int(self, name: str, *, positive: bool = True, required: bool) -> int | None: ...

    def arg_int(self, name: str, *, positive: bool = True, required: bool = True) -> int | None:
        value = self.args.get(name)
        if value is None:
            if required:
                raise ContractError(f"argument {name!r} is required")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ContractError(f"argument {name!r} must be an integer")
        if positive and value <= 0:
            raise ContractError(f"argument {name!r} must be positive")
        return value

    def reject(self, reason: str) -> None:
        raise ContractError(reason)

    # --- accounts and value ----------------------------------------------------------------
    def account(self, key: str, asset: str, *, lock: bool = False) -> AccountInfo:
        info = self._reader.account(key, asset, lock=lock)
        if info is None:
            raise ContractError(f"no {asset} account {key!r}")
        return info

    def accounts(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], AccountInfo]:
        """Many accounts in one unlocked read (who owns them, their kind); missing ones are absent.
        For checks of what an account is, not of what it holds."""
        return self._reader.accounts(list(dict.fromkeys(keys)), lock=False)

    def lock(self, *accounts: tuple[str, str]) -> None:
        """Lock several accounts in one read (in id order, so callers cannot deadlock each
        other); later ``balance`` calls for them need no further query."""
        wanted = [a for a in accounts if a not in self._locked]
        found = self._reader.accounts(wanted, lock=True)
        for key, asset in wanted:
            if (key, asset) not in found:
                raise ContractError(f"no {asset} account {key!r}")
        self._locked.update(found)

    def lock_present(self, *accounts: tuple[str, str]) -> None:
        """Like ``lock``, for accounts that may not exist (read as absent, not refused): one
        read for the accounts a call always needs and those it needs only if opened."""
        wanted = [a for a in accounts if a not in self._locked]
        self._locked.update(self._reader.accounts(wanted, lock=True))

    def holds(self, key: str, asset: str) -> bool:
        """Whether ``lock_present`` found the account."""
        return (key, asset) in self._locked

    def locked_accounts(self) -> dict[tuple[str, str], AccountInfo]:
        """Accounts read under lock so far, with their balances at that read."""
        return dict(self._locked)

    def balance(self, key: str, asset: str) -> int:
        """Current balance, locked for the rest of the invocation, plus this invocation's postings."""
        if (key, asset) not in self._locked:
            self._locked[(key, asset)] = self.account(key, asset, lock=True)
        base = self._locked[(key, asset)].balance
        return base + sum(a for k, s, a in self.effects.postings if k == key and s == asset)

    def require_owner(self, key: str, asset: str, organisation_id: int | None = None) -> None:
        """The account must belong to the invoker's organisation (checked when applied)."""
        self.effects.owner_checks.append((key, asset, organisation_id or self.invoker.org_id))

    def transfer(self, source: str, destination: str, amount: int, asset: str) -> None:
        if amount <= 0:
            raise ContractError("amount must be positive")
        if source == destination:
            raise ContractError("source and destination are the same account")
        self.effects.postings.append((source, asset, -amount))
        self.effects.postings.append((destination, asset, amount))

    def mint(self, destination: str, amount: int, asset: str) -> None:
        self.transfer(ISSUANCE, destination, amount, asset)

    def burn(self, source: str, amount: int, asset: str) -> None:
        self.transfer(source, ISSUANCE, amount, asset)

    # --- world state (namespace = this chaincode) -----------------------------------------
    def get_state(self, key: str, *, namespace: str | None = None) -> Any:
        """Read a key of this chaincode's state (locked until commit), or read-only another
        chaincode's (``namespace``), as Fabric chaincodes query each other."""
        if namespace is not None and namespace != self.namespace:
            row = self._reader.state(namespace, key, lock=False)
            return None if row is None or row[2] else row[0]
        if key in self._state_cache:
            return self._state_cache[key]
        row = self._reader.state(self.namespace, key, lock=True)
        value = None if row is None or row[2] else row[0]
        self._state_cache[key] = value
        self.effects.locked_versions[(self.namespace, key)] = 0 if row is None else row[1]
        return value

    def get_states(self, keys: list[str], *, namespace: str | None = None, span: bool = False,
                   shared: bool = False) -> dict[str, Any]:
        """``get_state`` of many keys in one read (absent or deleted keys map to None): a
        contract that touches thousands of entries must not pay a round trip for each.
        ``span``: the keys of each directory (the key up to its last "/") are nearly all the
        entries between the smallest and the largest of them, so each directory may be read as
        one key range (a station's slot: every household's key in it).
        ``shared``: keys the contract only reads (a configuration every call of it reads), locked
        so that their writers wait until this invocation ends but other readers do not; writing
        one of them after all takes its writer's lock then (see ``lock_state_keys``)."""
        if namespace is not None and namespace != self.namespace:
            rows = self._reader.states(namespace, list(dict.fromkeys(keys)), lock=False, span=span)
            return {k: _live(rows.get(k)) for k in keys}
        missing = [k for k in dict.fromkeys(keys) if k not in self._state_cache]
        if missing:
            rows = self._reader.states(self.namespace, missing, lock=True, span=span, shared=shared)
            # Versions read under a shared lock are not recorded: a write of such a key must
            # take the writer's lock, which the applier does for keys it has no version of.
            versions = self.effects.locked_versions if not shared else {}
            for k in missing:
                row = rows.get(k)
                self._state_cache[k] = _live(row)
                versions[(self.namespace, k)] = 0 if row is None else row[1]
        return {k: self._state_cache[k] for k in keys}

    def get_fields(self, keys: list[str], fields: tuple[str, ...], *, span: bool = False) -> dict[str, Any]:
        """``get_states`` of entries whose values are objects, each with only ``fields`` of its
        members (those it has), for a contract that needs a field or two of thousands of
        records: the rest is neither sent nor parsed. Locked like ``get_states``; what this
        invocation has already read or written is answered from that."""
        missing = [k for k in dict.fromkeys(keys) if k not in self._state_cache]
        found: dict[str, Any] = {}
        if missing:
            rows = self._reader.states(self.namespace, missing, lock=True, span=span, fields=fields)
            versions = self.effects.locked_versions
            for k in missing:
                row = rows.get(k)
                found[k] = _live(row)
                versions[(self.namespace, k)] = 0 if row is None else row[1]
        cache = self._state_cache
        return {k: found[k] if k in found else None if cache[k] is None else _project(cache[k], fields)
                for k in keys}

    def peek_state(self, key: str) -> Any:
        """Read a key of this chaincode's state without locking it (a value that only gates the
        call, such as a policy, need not serialise every caller that reads it)."""
        if key in self._state_cache:
            return self._state_cache[key]
        return _live(self._reader.state(self.namespace, key, lock=False))

    def peek_states(self, keys: list[str]) -> dict[str, Any]:
        """``peek_state`` of many keys in one read."""
        rows = self._reader.states(self.namespace, [k for k in dict.fromkeys(keys) if k not in self._state_cache],
                                   lock=False)
        return {k: self._state_cache[k] if k in self._state_cache else _live(rows.get(k)) for k in keys}

    def require_device(self) -> str:
        """The invoker must be a device identity; returns its name (the device's public id)."""
        if self.invoker.kind != "device":
            raise ContractError(f"{self.chaincode}.{self.function} must be invoked by a device's own meter key")
        return self.invoker.identity_name

    def put_state(self, key: str, value: Any) -> None:
        if value is None:
            raise ContractError("state values cannot be null; use del_state")
        try:
            text = canonical_json(value)
        except CanonicalError as exc:
            raise ContractError(f"state value for {key!r} is not ledger JSON: {exc}") from exc
        self._state_cache[key] = value
        self.effects.state_writes.append((self.namespace, key, value, False))
        self.effects.state_texts.append(text)

    def del_state(self, key: str) -> None:
        self._state_cache[key] = None
        self.effects.state_writes.append((self.namespace, key, None, True))
        self.effects.state_texts.append(None)

    def emit(self, name: str, payload: dict[str, Any]) -> None:
        self.effects.events.append({"name": name, "payload": payload})


def _project(value: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    return {f: value[f] for f in fields if f in value} if isinstance(value, dict) else {}


def _live(row: tuple[Any, int, bool] | None) -> Any:
    return None if row is None or row[2] else row[0]


def net_postings(postings: list[tuple[str, str, int]]) -> dict[tuple[str, str], int]:
    """Merge postings per (account, asset) keeping first-seen order; drop zero nets."""
    merged: dict[tuple[str, str], int] = {}
    for key, asset, amount in postings:
        merged[(key, asset)] = merged.get((key, asset), 0) + amount
    return {k: v for k, v in merged.items() if v}


def check_balances(deltas: dict[tuple[str, str], int], accounts: dict[tuple[str, str], AccountInfo]) -> None:
    """Pure: refuse any non-issuance account going below zero, naming it."""
    for (key, asset), delta in deltas.items():
        info = accounts[(key, asset)]
        if info.kind != ISSUANCE and info.balance + delta < 0:
            raise ContractError(
                f"insufficient funds: {asset} account {key!r} holds {info.balance}, needs {-delta}"
            )
