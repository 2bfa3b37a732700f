"""Every page at 390×844, anonymous and signed in as a household and as utility staff, in the
system Chromium: axe-core finds no serious or critical violation, every visible control is a
comfortable tap target, and nothing sticks out of the viewport sideways.

Pages are the seeds below plus every in-app link found on them (one page per URL shape, so the
explorer's hundred transactions cost one visit): a page added later is covered as soon as some
page links to it.

Tap-target rule: every visible ``a``, ``button``, ``input``, ``select``, ``textarea``,
``summary`` and ``[role=button]`` is at least 44×44 CSS px, with two exemptions that WCAG 2.5.5
and 2.5.8 make too:
- an inline link inside running text (a sentence: the link's parent block has text of its own
  outside the link), whose size the line height sets;
- a checkbox or radio button inside or named by a ``label`` whose box is at least 44×44 (the
  label is the target).
axe-core is vendored in tests/assets (MPL-2.0, licence beside it); it never reaches users.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command

from tests.browser_sign_in import sign_in
from tests.frontend.test_browser_phone import PHONE, phone_browser

AXE = Path(__file__).resolve().parents[1] / "assets" / "axe-core-4.14.1.min.js"
MIN_TAP = 44
MAX_PAGES = 60
DEMO_PASSWORD = "gridcoin-demo"

# Links never followed: they change state (log out), are not pages (images, exports, the API),
# or are Django's own (admin).
SKIP_PATH = re.compile(r"^/(api|admin|static|webhooks|ws)/|^/accounts/logout/|\.(png|svg|csv|json|js|css|pdf)$")

# Collected in the page: tap targets that are too small, and elements poking out of the viewport
# (outside any sideways-scrolling container, where overflow is the point).
PAGE_CHECKS = """
(minTap) => {
  const visible = (el) => el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true})
      && el.getClientRects().length > 0;
  const describe = (el) => {
    const text = (el.innerText || el.value || el.getAttribute('aria-label') || el.name || '').trim();
    return `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${el.className && typeof el.className === 'string'
        ? '.' + el.className.trim().split(/\\s+/).join('.') : ''} "${text.slice(0, 40)}"`;
  };
  const inRunningText = (el) => {
    if (el.tagName !== 'A' || getComputedStyle(el).display !== 'inline') return false;
    let block = el.parentElement;
    while (block && getComputedStyle(block).display.startsWith('inline')) block = block.parentElement;
    if (!block) return false;
    const own = Array.from(block.querySelectorAll('a, button')).reduce(
        (text, link) => text.replace(link.innerText, ''), block.innerText);
    return own.replace(/[\\s·|,.:;()\\[\\]—–-]/g, '').length > 0;
  };
  const labelBox = (el) => {
    const label = el.closest('label') || (el.id && document.querySelector(`label[for="${el.id}"]`));
    return label ? label.getBoundingClientRect() : null;
  };
  const small = [];
  const selector = 'a[href], button, input:not([type=hidden]), select, textarea, summary, [role=button]';
  for (const el of document.querySelectorAll(selector)) {
    if (!visible(el) || inRunningText(el)) continue;
    let box = el.getBoundingClientRect();
    if (el.type === 'checkbox' || el.type === 'radio') box = labelBox(el) || box;
    if (box.width < minTap - 0.5 || box.height < minTap - 0.5) {
      small.push(`${describe(el)} is ${Math.round(box.width)}×${Math.round(box.height)}`);
    }
  }
  const width = document.documentElement.clientWidth;
  const scrolls = (el) => {
    for (let a = el.parentElement; a; a = a.parentElement) {
      if (['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(a).overflowX)
          && a !== document.documentElement && a !== document.body) return true;
    }
    return false;
  };
  const wide = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (!visible(el)) continue;
    const box = el.getBoundingClientRect();
    if ((box.right > width + 0.5 || box.left < -0.5) && box.width > 0 && !scrolls(el)) {
      wide.push(`${describe(el)} spans ${Math.round(box.left)}..${Math.round(box.right)}`);
    }
  }
  // Every section tab on screen at once: a tab scrolled out of sight is a tab nobody finds.
  for (const tab of document.querySelectorAll('.tabbar a')) {
    const box = tab.getBoundingClientRect();
    if (box.left < -0.5 || box.right > width + 0.5) wide.push(`tab ${describe(tab)} is off screen`);
  }
  return {small, wide, scrollWidth: document.documentElement.scrollWidth,
          links: Array.from(document.querySelectorAll('a[href]'),
                           (a) => new URL(a.getAttribute('href'), location.href).href)};
}
"""

AXE_RUN = """
async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ': ' + n.failureSummary.split('\\n').slice(1, 3).join(' ')),
  }));
}
"""


def url_shape(path: str) -> str:
    """One visit per kind of page: ids, numbers and hashes become placeholders."""
    path = re.sub(r"/[0-9a-f]{16,}", "/<hash>", path)
    path = re.sub(r"/\d+(?=/|$)", "/<n>", path)
    return re.sub(r"^/d/[^/]+|^/simulators/consumer/[^/]+", lambda m: m.group(0).rsplit("/", 1)[0] + "/<id>", path)


@pytest.fixture
def demo_phone(monkeypatch, transactional_db):
    """The demo world and a 390×844 phone that may inject axe-core whatever the page's CSP."""
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    with phone_browser(monkeypatch, bypass_csp=True) as context:
        yield context.new_page()


def log_in(page, base: str, username: str) -> None:
    sign_in(page, base, username, DEMO_PASSWORD)


def audit_pages(page, base: str, seeds: list[str]) -> tuple[list[str], list[str]]:
    """Visit the seeds and the in-app links they lead to; return (pages visited, problems)."""
    axe_source = AXE.read_text()
    queue, seen_shapes, visited, problems = list(seeds), set(), [], []
    while queue and len(visited) < MAX_PAGES:
        path = queue.pop(0)
        if path in visited or (path not in seeds and url_shape(path) in seen_shapes):
            continue
        seen_shapes.add(url_shape(path))
        response = page.goto(base + path)
        assert response is not None, path
        if response.status >= 500:
            problems.append(f"{path}: HTTP {response.status}")
            continue
        visited.append(path)
        page.wait_for_load_state("load")
        found = page.evaluate(PAGE_CHECKS, MIN_TAP)
        problems += [f"{path}: tap target {s}" for s in found["small"]]
        if found["scrollWidth"] > PHONE["width"]:
            problems.append(f"{path}: page is {found['scrollWidth']}px wide")
        problems += [f"{path}: overflows the viewport: {w}" for w in found["wide"]]
        page.add_script_tag(content=axe_source)
        for v in page.evaluate(AXE_RUN):
            problems.append(f"{path}: axe {v['impact']} {v['id']} ({v['help']}): {'; '.join(v['nodes'])}")
        for href in found["links"]:
            parts = urlsplit(href)
            if f"{parts.scheme}://{parts.netloc}" != base or SKIP_PATH.search(parts.path):
                continue
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            if url_shape(parts.path) not in seen_shapes:
                queue.append(target)
    return visited, problems


COMMON = ["/", "/devices/", "/d/SL-0001", "/scan/", "/prices/", "/explorer/", "/explorer/blocks/1/",
          "/d/nosuch"]


def first_transaction_of(username: str) -> str:
    from django.contrib.auth import get_user_model

    from wallet import selectors as wallet_selectors

    user = get_user_model().objects.get(username=username)
    return wallet_selectors.wallet_transactions(user).order_by("id").first().tx_hash


@pytest.mark.browser
def test_pages_for_an_anonymous_visitor(live_server, demo_phone):
    from ledger.models import Transaction

    tx = Transaction.objects.order_by("id").first().tx_hash
    seeds = [*COMMON, "/accounts/login/", "/accounts/signup/", f"/explorer/tx/{tx}/", "/d/HM-ALICE"]
    visited, problems = audit_pages(demo_phone, live_server.url, seeds)
    assert {"/accounts/login/", "/accounts/signup/", "/d/SL-0001", "/explorer/blocks/1/"} <= set(visited)
    assert not problems, "\n".join(problems)


@pytest.mark.browser
def test_pages_for_a_household(live_server, demo_phone):
    log_in(demo_phone, live_server.url, "alice")
    receipt = first_transaction_of("alice")
    seeds = [*COMMON, "/wallet/", f"/wallet/receipts/{receipt}/", f"/explorer/tx/{receipt}/", "/d/HM-ALICE",
             "/simulators/producer/", "/simulators/consumer/HM-ALICE/", "/payments/simulator/"]
    visited, problems = audit_pages(demo_phone, live_server.url, seeds)
    assert {"/wallet/", f"/wallet/receipts/{receipt}/", "/simulators/consumer/HM-ALICE/"} <= set(visited)
    assert not problems, "\n".join(problems)


@pytest.mark.browser
def test_pages_for_utility_staff(live_server, demo_phone):
    from payments.reconciliation.models import ReconciliationRun

    log_in(demo_phone, live_server.url, "utility")
    run = ReconciliationRun.objects.order_by("id").first()
    seeds = [*COMMON, "/wallet/", "/devices/stickers/", "/simulators/producer/", "/simulators/consumer/SL-0001/",
             "/payments/simulator/", "/payments/reconciliation/", f"/payments/reconciliation/{run.id}/"]
    visited, problems = audit_pages(demo_phone, live_server.url, seeds)
    assert {"/devices/stickers/", "/payments/reconciliation/", f"/payments/reconciliation/{run.id}/"} <= set(visited)
    assert not problems, "\n".join(problems)
