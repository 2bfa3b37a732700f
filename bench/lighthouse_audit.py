"""`make audit`: Lighthouse (mobile) on the embedded default with the demo seeded.

Seeds the demo into a throw-away data directory, starts `manage.py runserver` on a spare port
(as `make run` does, DEBUG off), signs a demo resident in for the wallet (its session cookie goes
to Lighthouse as an extra header), audits home, the devices list, a device page and the wallet
with the system Chromium, prints the four category scores per page, and stops the server.

Targets (issue 13): accessibility and best practices >= 95, SEO and performance >= 90. The exit
status is 1 when a score misses its target, so the target can gate a release; it is not part of
`make test`.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIGHTHOUSE = ROOT / "node_modules" / ".bin" / "lighthouse"
CATEGORIES = {"performance": 90, "accessibility": 95, "best-practices": 95, "seo": 90}
PAGES = [("home", "/", False), ("devices", "/devices/", False), ("device", "/d/SL-0001", False),
         ("wallet", "/wallet/", True)]
RESIDENT = "alice"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def embedded_env(data_dir: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "REDIS_URL", "MQTT_URL", "DEBUG", "GRIDCOIN_ENV", "DJANGO_SETTINGS_MODULE"}}
    env.update(GRIDCOIN_DATA_DIR=data_dir, LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1",
               GRIDCOIN_BACKGROUND_SEALER="0", GRIDCOIN_BACKGROUND_SCHEDULER="0")
    return env


def manage(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{proc.stderr}")
    return proc.stdout


SESSION = """
from django.contrib.auth import get_user_model
from django.test import Client
client = Client()
client.force_login(get_user_model().objects.get(username={username!r}))
print(client.cookies["sessionid"].value)
"""


def wait_until_up(url: str, server: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"the server exited with status {server.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    sys.exit(f"the server did not answer {url} within {seconds:.0f}s")


def lighthouse(url: str, out: Path, chrome: str, cookie: str | None) -> dict[str, int]:
    args = [str(LIGHTHOUSE), url, "--quiet", "--output=json", f"--output-path={out}", "--form-factor=mobile",
            "--only-categories=" + ",".join(CATEGORIES),
            "--chrome-flags=--headless=new --no-sandbox --disable-gpu --no-first-run --disable-sync"]
    if cookie:
        args.append("--extra-headers=" + json.dumps({"Cookie": f"sessionid={cookie}"}))
    for attempt in (1, 2):
        proc = subprocess.run(args, cwd=ROOT, env={**os.environ, "CHROME_PATH": chrome}, capture_output=True, text=True)
        # Lighthouse sometimes loses the page load's trace on a busy machine (NO_NAVSTART): its
        # own advice is to run it again, once; any other failure is reported as it is.
        if proc.returncode == 0 and out.exists() or attempt == 2 or "NO_NAVSTART" not in proc.stderr:
            break
    if proc.returncode != 0 or not out.exists():
        sys.exit(f"lighthouse failed on {url}:\n{proc.stderr[-4000:]}")
    report = json.loads(out.read_text())
    if report.get("runtimeError"):
        sys.exit(f"lighthouse could not load {url}: {report['runtimeError']}")
    if report.get("finalDisplayedUrl", url).rstrip("/") != url.rstrip("/"):
        sys.exit(f"lighthouse audited {report['finalDisplayedUrl']} instead of {url} (a redirect: signed out?)")
    return {name: round((report["categories"][name]["score"] or 0) * 100) for name in CATEGORIES}


def failing_audits(out: Path) -> list[str]:
    """The weighted audits that cost a page points."""
    report = json.loads(out.read_text())
    lines = []
    for name in CATEGORIES:
        for ref in report["categories"][name]["auditRefs"]:
            audit = report["audits"][ref["id"]]
            if ref["weight"] and audit["score"] is not None and audit["score"] < 1:
                lines.append(f"    {name}: {audit['id']} ({audit['score']:.2f}) {audit.get('displayValue', '')}")
                for item in (audit.get("details") or {}).get("items", [])[:3]:
                    if isinstance(item, dict) and (item.get("description") or item.get("url")):
                        lines.append(f"      {item.get('url', '')} {str(item.get('description', ''))[:160]}")
    return lines


def main() -> int:
    if not LIGHTHOUSE.exists():
        sys.exit("Lighthouse is not installed: run `npm ci` (make audit does).")
    chrome = os.environ.get("CHROME_PATH") or os.environ.get("GRIDCOIN_CHROMIUM") or "/usr/bin/chromium"
    if not shutil.which(chrome):
        sys.exit(f"no Chromium at {chrome} (set CHROME_PATH)")
    port = int(os.environ.get("AUDIT_PORT") or free_port())
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="gridcoin-audit-") as data_dir:
        env = embedded_env(data_dir)
        manage(env, "migrate", "--noinput", "-v0")
        manage(env, "seed_demo")
        cookie = manage(env, "shell", "-c", SESSION.format(username=RESIDENT)).strip().splitlines()[-1]
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"], cwd=ROOT,
            env={**env, "GRIDCOIN_BACKGROUND_SEALER": "1", "GRIDCOIN_BACKGROUND_SCHEDULER": "1"},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until_up(base + "/", server)
            results = []
            for name, path, signed_in in PAGES:
                out = Path(data_dir) / f"lighthouse-{name}.json"
                scores = lighthouse(base + path, out, chrome, cookie if signed_in else None)
                results.append((name, path, scores, failing_audits(out)))
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
    header = f"{'page':<10} {'path':<12}" + "".join(f" {c:>15}" for c in CATEGORIES)
    print(header)
    print("-" * len(header))
    missed = False
    for name, path, scores, _ in results:
        cells = ""
        for category, target in CATEGORIES.items():
            mark = "" if scores[category] >= target else " *"
            missed |= bool(mark)
            cells += f" {str(scores[category]) + mark:>15}"
        print(f"{name:<10} {path:<12}{cells}")
    print("targets: " + ", ".join(f"{c} >= {t}" for c, t in CATEGORIES.items()) + "; * marks a miss")
    for name, path, _scores, lines in results:
        if lines:
            print(f"\n{name} ({path}) loses points on:")
            print("\n".join(lines))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
