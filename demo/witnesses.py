"""The demo's witnesses: the bank, the charity and the auditor each cosign the ledger's
checkpoints, as ``manage.py run_witness`` would on their own machines (docs/witnesses.md).

The seed registers each one's witness key (kept in GRIDCOIN_DATA_DIR/witnesses/<org>/, 0600) and
gives it a read-only API token; in the embedded default (``make run``) they run as threads of the
web process that talk to it over HTTP once it is up, never through the database.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import urllib.parse
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model

from accounts import services as accounts
from accounts.models import Membership, Role
from ledger import log
from ledger import services as ledger
from ledger.models import IdentityKind, Organisation
from ledger.witness_client import ALARM_FILE, STATE_FILE, HttpTransport, Witness, load_or_create_key, run

from .organisations import AUDITOR, BANK, CHARITY

logger = logging.getLogger(__name__)

WITNESS_ORGS = [BANK, CHARITY, AUDITOR]
TOKEN_FILE = "token"


def witness_dir(msp_id: str) -> Path:
    return Path(settings.DATA_DIR) / "witnesses" / msp_id


def witnesses_seed() -> list[str]:
    """Register the missing demo witnesses; the caller holds the transaction."""
    created: list[str] = []
    for msp_id in WITNESS_ORGS:
        org = Organisation.objects.filter(msp_id=msp_id).first()
        if org is None or org.identities.filter(name=log.WITNESS_IDENTITY).exists():
            continue
        directory = witness_dir(msp_id)
        key = load_or_create_key(directory / "witness.key")
        # A new registration means a new ledger: what this directory signed for an older one
        # would make the witness refuse the new chain.
        for stale in (STATE_FILE, ALARM_FILE):
            (directory / stale).unlink(missing_ok=True)
        from ledger.notes import raw_public

        ledger.identity_register(organisation=org, name=log.WITNESS_IDENTITY, public_key=raw_public(key),
                                 kind=IdentityKind.SERVICE)
        created.append(f"witness {msp_id}/witness")
        # The witness reads the log through the API like anyone else: its own reader and token.
        username = f"witness-{msp_id}"
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            user = get_user_model().objects.create_user(username=username, password=None)
        membership = Membership.objects.filter(user=user, organisation=org).first()
        if membership is None:
            accounts.membership_create(user=user, organisation=org, role=Role.MEMBER)
        _, raw = accounts.api_token_create(user=user, organisation=org, name="witness", scopes=["ledger:read"])
        token_file = directory / TOKEN_FILE
        token_file.unlink(missing_ok=True)
        token_file.touch(mode=0o600)
        token_file.write_text(raw + "\n")
    return created


_started = threading.Event()


def start_background_witnesses(api: str | None = None, *, interval: float = 1.0) -> threading.Event:
    """Run each seeded demo witness in a daemon thread once the web server answers; returns the
    event that stops them."""
    api = api or settings.GRIDCOIN_WITNESS_API
    stopped = threading.Event()
    if _started.is_set():
        return stopped
    _started.set()

    def start() -> None:
        url = urllib.parse.urlsplit(api)
        while not stopped.is_set():
            try:
                socket.create_connection((url.hostname, url.port or 80), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        start_seeded_witnesses(api, set(), interval=interval, stopped=stopped)

    threading.Thread(target=start, name="gridcoin-witnesses", daemon=True).start()
    return stopped


def start_seeded_witnesses(api: str, running: set[str], *, interval: float, stopped: threading.Event) -> list[str]:
    """Start a daemon thread for each demo witness that is seeded (key and token on disk) and not
    in ``running``; returns the organisations started (and adds them to ``running``)."""
    started = []
    for msp_id in WITNESS_ORGS:
        directory = witness_dir(msp_id)
        if msp_id in running or not (directory / "witness.key").exists() or not (directory / TOKEN_FILE).exists():
            continue
        witness = Witness(org=msp_id, transport=HttpTransport(api, (directory / TOKEN_FILE).read_text().strip()),
                          key=load_or_create_key(directory / "witness.key"), state_dir=directory)
        threading.Thread(target=run, args=[witness], kwargs={"interval": interval, "stopped": stopped},
                         name=f"gridcoin-witness-{msp_id}", daemon=True).start()
        logger.info("witness %s running against %s", witness.name, api)
        running.add(msp_id)
        started.append(msp_id)
    return started
