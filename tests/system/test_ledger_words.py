"""Apps use the ledger's words: outside ``ledger/`` (migrations and tests aside) no module has
SQL naming a ledger table, spells an energy chaincode's world-state keys (``registers/``,
``windows/``) or account keys (``device:`` ...), or defines the energy asset's code again. They
read through ``ledger.selectors`` and name things with ``ledger.keys``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.apps import apps

from ledger import keys

ROOT = Path(__file__).resolve().parents[2]
# verifier/ is the standalone verifier: it imports nothing of the project by design and spells
# the published format (docs/ledger-format.md) itself, as any outside verifier must.
SKIPPED_DIRS = {"ledger", "tests", "migrations", "node_modules", "static", "templates", "verifier"}

STATE_PREFIXES = (keys.registers_key(""), keys.windows_key(""))
ACCOUNT_PREFIXES = tuple(key.split(":")[0] + ":" for key in (
    keys.producer_account(""), keys.utility_account("", 0), keys.household_account(""), keys.device_account(""),
    keys.credit_account("", ""), keys.pool_account(""), keys.match_account(""), keys.escrow_account("")))


def ledger_tables() -> set[str]:
    return {model._meta.db_table for model in apps.get_app_config("ledger").get_models()}


def app_modules() -> list[Path]:
    found = []
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        if parts[0].startswith(".") or any(part in SKIPPED_DIRS for part in parts[:-1]):
            continue
        found.append(path)
    return sorted(found)


def offences(source: str, tables: set[str]) -> list[str]:
    """What in ``source`` spells the ledger's layout instead of using its words."""
    table_word = re.compile(r"\b(" + "|".join(sorted(tables)) + r")\b")
    quoted_account = re.compile("'(" + "|".join(p[:-1] for p in ACCOUNT_PREFIXES) + "):'")
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if table_word.search(text):
                found.append(f"line {node.lineno}: names ledger table {table_word.search(text).group(1)}")
            if any(prefix in text for prefix in STATE_PREFIXES):
                found.append(f"line {node.lineno}: spells a state key in {text[:40]!r}")
            if text.startswith(ACCOUNT_PREFIXES) or quoted_account.search(text):
                found.append(f"line {node.lineno}: spells an account key in {text[:40]!r}")
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == "ENERGY" for t in targets):
            found.append(f"line {node.lineno}: defines ENERGY (use ledger.keys.ENERGY)")
    return found


def test_the_scan_covers_the_apps():
    names = {str(p.relative_to(ROOT)) for p in app_modules()}
    assert {"meters/selectors.py", "iot_gateway/services.py", "frontend/simulators.py", "wallet/selectors.py",
            "bench/gateway_bench.py"} <= names
    assert not any(n.startswith(("ledger/", "tests/")) or "/migrations/" in n for n in names)


@pytest.mark.parametrize("source", [
    'cur.execute("SELECT 1 FROM meters_device d JOIN ledger_identity i ON i.id = d.identity_id")',
    'sql = "(SELECT a.balance FROM ledger_account a WHERE a.key = \'device:\' || d.public_id)"',
    'key = f"registers/{device.public_id}"',
    'StateEntry.objects.filter(key__startswith="windows/")',
    'account = f"device:{public_id}"',
    'account = "household:" + msp_id',
    'pool = f"pool:{campaign.slug}"',
    'ENERGY = "k"',
    'ENERGY: str = "k"',
])
def test_the_scan_catches_each_way_of_spelling_the_layout(source):
    assert offences(source, ledger_tables())


def test_the_scan_lets_the_ledgers_words_through():
    source = ("from ledger.keys import ENERGY, device_account, windows_key\n"
              'account = device_account(public_id)\nkey = windows_key(public_id)\nname = "ledger_verify"\n'
              'help = "devices: the public ones"\n')
    assert offences(source, ledger_tables()) == []


def test_no_app_spells_the_ledgers_layout():
    tables = ledger_tables()
    found = {}
    for path in app_modules():
        bad = offences(path.read_text(), tables)
        if bad:
            found[str(path.relative_to(ROOT))] = bad
    assert found == {}
