"""The standalone verifier is its own package: it imports nothing of the project (only the
standard library, ``cryptography`` and ``rfc8785``), runs as ``python -m verifier`` from any
directory, and says OK or names the first problem with its exit status."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.models import Block, Posting, Transaction
from ledger.verify import trusted_orderer_keys
from tests.ledger.tampering import sealed_ledger, superuser
from tests.ledger_helpers import make_member

VERIFIER_ROOT = Path(__file__).resolve().parents[2] / "verifier"
ALLOWED = {"cryptography", "rfc8785", "verifier"}
# The optional ``sodium`` extra: imported only where an ImportError is caught.
OPTIONAL = {"nacl"}


def _optional_imports(tree: ast.AST) -> set[int]:
    """ids of the import nodes inside a ``try`` that catches ImportError."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(getattr(h.type, "id", "") == "ImportError" for h in node.handlers):
            found |= {id(sub) for stmt in node.body for sub in ast.walk(stmt)}
    return found


def test_the_verifier_imports_only_the_standard_library_cryptography_and_rfc8785():
    sources = sorted((VERIFIER_ROOT / "verifier").glob("*.py"))
    assert {p.name for p in sources} >= {"__init__.py", "__main__.py", "checker.py", "formats.py", "sources.py"}
    seen = set()
    for path in sources:
        tree = ast.parse(path.read_text(), str(path))
        optional = _optional_imports(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: inside the package
                    continue
                names = [node.module or ""]
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__":
                raise AssertionError(f"{path.name}: dynamic import")
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                seen.add(top)
                if top in OPTIONAL and id(node) in optional:
                    continue
                assert top in ALLOWED or top in sys.stdlib_module_names, f"{path.name} imports {name}"
    assert {"cryptography", "rfc8785"} <= seen
    declared = (VERIFIER_ROOT / "pyproject.toml").read_text()
    assert 'dependencies = ["cryptography>=42", "rfc8785>=0.1.4"]' in declared
    assert 'sodium = ["PyNaCl>=1.5"]' in declared


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")}
    env["PYTHONPATH"] = str(VERIFIER_ROOT)
    return subprocess.run([sys.executable, "-m", "verifier", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.django_db
def test_python_m_verifier_on_an_export(tmp_path):
    from ledger.export import export_ledger

    sealed_ledger()
    pin = [arg for key in sorted(trusted_orderer_keys()) for arg in ("--orderer-key", key)]
    export_ledger(tmp_path / "good")
    ok = _run(str(tmp_path / "good"), *pin, "--workers", "1", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    blocks, transactions = Block.objects.count(), Transaction.objects.count()
    assert ok.stdout.startswith(f"OK {blocks} blocks, {transactions} transactions (2 not yet sealed)"), ok.stdout
    manifest = json.loads((tmp_path / "good" / "manifest.json").read_text())
    assert manifest["format"] == "gridcoin-ledger-export/1" and manifest["files"][0]["first_block"] == 0

    posting = Posting.objects.order_by("id")[3]
    with superuser():
        Posting.objects.filter(pk=posting.pk).update(amount=posting.amount + 1)
    export_ledger(tmp_path / "bad")
    bad = _run(str(tmp_path / "bad"), *pin, cwd=tmp_path)
    assert bad.returncode == 1
    tx = posting.transaction
    assert f"INVALID: block {tx.block.number}, transaction {tx.tx_hash}: hash mismatch" in bad.stderr, bad.stderr

    stranger = _run(str(tmp_path / "good"), "--orderer-key", "ab" * 32, cwd=tmp_path)
    assert stranger.returncode == 1 and "untrusted orderer key" in stranger.stderr
    (tmp_path / "good" / manifest["files"][0]["name"]).write_text("{}\n")
    edited = _run(str(tmp_path / "good"), *pin, cwd=tmp_path)
    assert edited.returncode == 1 and "INVALID" in edited.stderr
    missing = _run(str(tmp_path / "nowhere"), cwd=tmp_path)
    assert missing.returncode == 2 and "CANNOT VERIFY" in missing.stderr


@pytest.mark.django_db(transaction=True)
def test_python_m_verifier_on_a_live_api(live_server, tmp_path):
    """An outsider's run over real HTTP: ``python -m verifier --api URL --token T`` with an
    auditor's token and the orderer key pinned; then a balance edited by a superuser."""
    from django.contrib.auth import get_user_model

    from accounts.services import api_token_create, membership_create
    from ledger.models import Account

    built = sealed_ledger()
    auditor = make_member("outside-audit", "auditor")
    user = get_user_model().objects.create_user(username="outside-auditor", password=None)
    membership_create(user=user, organisation=auditor.organisation)
    _, token = api_token_create(user=user, organisation=auditor.organisation, name="verify", scopes=["ledger:read"])
    pin = [arg for key in sorted(trusted_orderer_keys()) for arg in ("--orderer-key", key)]
    api = f"{live_server.url}/api/v1/ledger/"
    ok = _run("--api", api, "--token", token, *pin, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    unsealed = Transaction.objects.filter(block__isnull=True).count()
    assert ok.stdout.startswith(f"OK 5 blocks, {Transaction.objects.count()} transactions ({unsealed} not yet sealed)")
    account = Account.objects.get(key=f"household:{built.net.alice.organisation.msp_id}", asset="k")
    with superuser():
        Account.objects.filter(pk=account.pk).update(balance=account.balance + 1)
    bad = _run("--api", api, "--token", token, *pin, cwd=tmp_path)
    assert bad.returncode == 1
    assert f"stores balance {account.balance + 1}, postings sum to {account.balance}" in bad.stderr, bad.stderr
    refused = _run("--api", api, "--token", "gct_" + "x" * 43, cwd=tmp_path)
    assert refused.returncode == 2 and "HTTP 401" in refused.stderr


@pytest.mark.django_db
def test_worker_processes_give_the_same_verdicts(tmp_path, monkeypatch):
    """Large exports are analysed in worker processes, a chunk of blocks each; applied in order,
    the verdict and the first problem are those of the single process."""
    import verifier
    from ledger.export import export_ledger
    from verifier import checker

    sealed_ledger()
    pin = sorted(trusted_orderer_keys())
    monkeypatch.setattr(checker, "CHUNK_BYTES", 1500)  # a block or two per chunk
    export_ledger(tmp_path / "good", blocks_per_file=1)
    report = verifier.verify_export(tmp_path / "good", orderer_keys=pin, workers=2, parallel=True)
    assert report.ok and report.transactions == Transaction.objects.count(), [str(p) for p in report.problems]
    posting = Posting.objects.filter(transaction__block__number__gte=1).order_by("id").first()
    with superuser():
        Posting.objects.filter(pk=posting.pk).update(amount=posting.amount + 1)
    export_ledger(tmp_path / "bad", blocks_per_file=1)
    alone = verifier.verify_export(tmp_path / "bad", orderer_keys=pin, workers=1, parallel=False)
    together = verifier.verify_export(tmp_path / "bad", orderer_keys=pin, workers=2, parallel=True)
    assert str(alone.problems[0]) == str(together.problems[0])
    assert posting.transaction.tx_hash in str(together.problems[0])
