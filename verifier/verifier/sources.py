"""Where the ledger comes from: an export directory (``manage.py ledger_export``) or a live read
API. Both feed the same ``Checker``."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .checker import Checker, Membership, Report, Stop

EXPORT_FORMAT = "gridcoin-ledger-export/1"


class SourceError(Exception):
    """The input cannot be read at all (not a problem of the ledger it describes)."""


# --- export directories ------------------------------------------------------------------------------


def _raw_lines(path: Path, expected_sha256: str, checker: Checker) -> Iterator[bytes]:
    """The file's non-empty lines; its SHA-256 is checked against the manifest at the end."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for line in handle:
            digest.update(line)
            if not line.isspace():  # stops at the first non-blank byte, and copies nothing
                yield line
    if digest.hexdigest() != expected_sha256:
        checker.fail(f"file {path.name} does not match the sha256 in the manifest")


def _lines(path: Path, expected_sha256: str, checker: Checker) -> Iterator[dict]:
    for line in _raw_lines(path, expected_sha256, checker):
        yield json.loads(line)


def _json_file(directory: Path, entry: dict, checker: Checker) -> Any:
    path = directory / entry["name"]
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        checker.fail(f"file {path.name} does not match the sha256 in the manifest")
    return json.loads(data)


def verify_export(directory: str | Path, *, orderer_keys: list[str] | None = None, quorum: int | None = None,
                  first_only: bool = True, workers: int | None = None, parallel: bool | None = None) -> Report:
    """``parallel``: analyse blocks in worker processes (default: when the blocks exceed 8 MB)."""
    directory = Path(directory)
    try:
        manifest = json.loads((directory / "manifest.json").read_bytes())
    except (OSError, ValueError) as exc:
        raise SourceError(f"cannot read {directory / 'manifest.json'}: {exc}") from exc
    if manifest.get("format") != EXPORT_FORMAT:
        raise SourceError(f"not a {EXPORT_FORMAT} export: format {manifest.get('format')!r}")
    pinned = list(orderer_keys or [])
    checker = Checker(orderer_keys=pinned or manifest["orderer_public_keys"], policies=manifest.get("policies"),
                      first_only=first_only, workers=workers, origin=manifest.get("origin", ""))
    if not pinned:
        checker.report.notes.append("orderer keys taken from the export, not pinned (--orderer-key)")
    checkpoint = manifest.get("checkpoint")
    if checkpoint:
        checker.want_tree_at = checkpoint.get("block")
    try:
        membership = _json_file(directory, manifest["membership"], checker)
        checker.membership = Membership(membership, manifest.get("genesis"))  # what config transactions lack
        total = sum((directory / entry["name"]).stat().st_size for entry in manifest["files"])
        checker.block_lines(_block_lines(directory, manifest["files"], checker),
                            parallel=total > PARALLEL_FROM if parallel is None else parallel)
        for record in _lines(directory / manifest["pending"]["name"], manifest["pending"]["sha256"], checker):
            checker.pending(record)
        checker.balances_against(membership["accounts"])
        checker.state_against(_lines(directory / manifest["state"]["name"], manifest["state"]["sha256"], checker))
        checker.membership_against_snapshot()
        if checkpoint:
            checker.checkpoint(checkpoint, origin=manifest["origin"], witnesses=manifest.get("witnesses") or [],
                               quorum=manifest.get("quorum", 0) if quorum is None else quorum)
        elif quorum:
            checker.fail(f"{quorum} witness cosignatures required, and the export has no checkpoint")
    except Stop:
        pass
    finally:
        checker.close()
    return checker.finish()


# Below this many bytes of blocks, worker processes cost more to start than they save.
PARALLEL_FROM = 8 << 20


def _block_lines(directory: Path, files: list[dict], checker: Checker) -> Iterator[bytes]:
    expected = 0
    for entry in files:
        if entry["first_block"] != expected:
            checker.fail(f"file {entry['name']} starts at block {entry['first_block']}, expected {expected}")
        yield from _raw_lines(directory / entry["name"], entry["sha256"], checker)
        expected = entry["last_block"] + 1


# --- a live read API -----------------------------------------------------------------------------------


class Api:
    def __init__(self, base: str, token: str | None, timeout: float = 30.0):
        self.base = base if base.endswith("/") else base + "/"
        self.token = token
        self.timeout = timeout

    def get(self, path: str, *, missing_ok: bool = False) -> Any:
        request = urllib.request.Request(urllib.parse.urljoin(self.base, path), headers={"Accept": "application/json"})
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (the user's URL)
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if missing_ok and exc.code == 404:
                return None
            raise SourceError(f"GET {request.full_url}: HTTP {exc.code}") from exc
        except urllib.error.URLError as exc:
            raise SourceError(f"GET {request.full_url}: {exc.reason}") from exc

    def pages(self, path: str) -> Iterator[dict]:
        url: str | None = path + ("&" if "?" in path else "?") + "limit=500"
        while url:
            page = self.get(url)
            if isinstance(page, list):
                yield from page
                return
            yield from page["results"]
            url = page.get("next")


def verify_api(base: str, *, token: str | None = None, orderer_keys: list[str] | None = None,
               quorum: int | None = None, first_only: bool = True, workers: int | None = None) -> Report:
    """Everything the API serves to an overseer's token (utility or auditor: a narrower token sees
    only some transactions, and the block counts then say so).

    The chain is checked up to the newest block of the API's ``snapshot/``, then the snapshot's
    unsealed transactions; the balances and membership so replayed must be the snapshot's."""
    api = Api(base, token)
    orderer = api.get("orderer/", missing_ok=True) or {}
    pinned = list(orderer_keys or [])
    keys = pinned or ([orderer["public_key"]] if orderer.get("public_key") else [])
    checker = Checker(orderer_keys=keys, policies=api.get("policies/"), first_only=first_only, workers=workers,
                      origin=orderer.get("origin", ""))
    if not pinned:
        checker.report.notes.append("orderer key taken from the API, not pinned (--orderer-key)")
    # The genesis membership is what the transactions before the configuration bootstrap are
    # checked against.
    genesis = _overseers_only(api, "membership/genesis/")
    if not genesis:
        checker.report.notes.append("the API serves no genesis membership to this token: transactions "
                                    "before the configuration bootstrap are checked against no membership")
    checkpoint = api.get("checkpoints/latest/", missing_ok=True)  # before the snapshot: it is no newer
    snapshot = _overseers_only(api, "snapshot/")
    if snapshot is None:
        checker.report.notes.append("balances and membership not compared (the API serves no snapshot to "
                                    "this token)")
        membership = {"accounts": list(api.pages("accounts/"))}  # account kinds: issuance may go negative
    else:
        checker.report.notes.append("world state not compared (the API serves none)")
        membership = snapshot["membership"]
    checker.membership = Membership(membership, genesis or None)
    if checkpoint:
        checker.want_tree_at = checkpoint.get("block")
    newest = snapshot.get("block") if snapshot else None
    try:
        for block in api.pages("blocks/"):
            if snapshot is not None and (newest is None or block["number"] > newest):
                break  # sealed after the snapshot: its transactions are among the snapshot's pending
            header = block.get("header") or {k: block.get(k) for k in
                                             ("number", "previous_hash", "merkle_root", "timestamp", "tx_count")}
            transactions = [{"tx_hash": document["tx_hash"], "bytes": document["bytes"],
                             "invoker_public_key": document["invoker_public_key"]}
                            for document in api.pages(f"blocks/{block['number']}/documents/")]
            checker.block({"header": header, "header_hash": block["header_hash"], "signature": block["signature"],
                           "signer_public_key": block["signer_public_key"], "transactions": transactions})
        if snapshot is not None:
            if checker.expected_number != (newest + 1 if newest is not None else 0):
                checker.fail(f"the snapshot's newest block is {newest}, the API serves blocks up to "
                             f"{checker.expected_number - 1}")
            for record in snapshot["pending"]:
                checker.pending(record)
            checker.balances_against(membership["accounts"])
            checker.membership_against_snapshot()
        if checkpoint:
            witnesses = api.get("witnesses/", missing_ok=True) or []
            checker.checkpoint(checkpoint, origin=checkpoint.get("origin") or orderer.get("origin", ""),
                               witnesses=witnesses,
                               quorum=(orderer.get("quorum") or 0) if quorum is None else quorum)
        elif quorum:
            checker.fail(f"{quorum} witness cosignatures required, and the API serves no checkpoint")
    except Stop:
        pass
    finally:
        checker.close()
    return checker.finish()


def _overseers_only(api: Api, path: str) -> Any:
    """What the API serves to the utility and auditors: None for a 404, or a 403 to other tokens."""
    try:
        return api.get(path, missing_ok=True)
    except SourceError as exc:
        if "HTTP 403" in str(exc):
            return None
        raise
