"""``demo`` knows every app and no app knows ``demo``: outside ``demo/`` (and the tests), no
module imports it, so the site runs the same with the demo app removed."""

from __future__ import annotations

import ast
from pathlib import Path

from django.conf import settings

REPO_ROOT = Path(__file__).resolve().parents[2]
NOT_APPS = {"demo", "tests", ".venv", ".git", "node_modules"}


def modules_outside_demo() -> list[Path]:
    return sorted(
        path for path in REPO_ROOT.rglob("*.py")
        if path.relative_to(REPO_ROOT).parts[0] not in NOT_APPS
    )


def demo_imports(path: Path, root: Path = REPO_ROOT) -> list[str]:
    """``import demo...`` and ``from demo... import`` statements, wherever they sit (a function
    body's import counts as much as the module's)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [f"{path.relative_to(root)}:{node.lineno} {name}" for name in names
                  if name == "demo" or name.startswith("demo.")]
    return found


def test_the_scan_reads_the_apps():
    scanned = {path.relative_to(REPO_ROOT).parts[0] for path in modules_outside_demo()}
    assert {"gridcoin", "ledger", "accounts", "meters", "payments", "iot_gateway", "frontend"} <= scanned


def test_the_scan_finds_an_import_of_demo(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import demonstration\nfrom . import demo\n\ndef f():\n"
                      "    from demo.selectors import demo_logins_shown\n    import demo.seed as s\n")
    assert demo_imports(module, root=tmp_path) == ["m.py:5 demo.selectors", "m.py:6 demo.seed"]


def test_no_app_outside_demo_imports_demo():
    offenders = [hit for path in modules_outside_demo() for hit in demo_imports(path)]
    assert offenders == []


def test_the_demo_app_is_installed_and_its_context_processor_is_the_pages_door():
    assert "demo" in settings.INSTALLED_APPS
    processors = settings.TEMPLATES[0]["OPTIONS"]["context_processors"]
    assert "demo.context_processors.demo_logins" in processors
