"""Why the ledger refused something, said in the reader's language.

A refusal's reason is written by the chaincode in English and recorded on the ledger as it is
(it is part of the signed, hashed transaction, so it never changes). Pages translate the reasons
a resident can meet when shown; any other reason is shown as recorded.
"""

from __future__ import annotations

import re

from django.utils.translation import gettext as _

# (pattern of the recorded reason, the text to show instead); the patterns follow the messages of
# ledger/contracts.py and ledger/chaincodes/energy.py.
_KNOWN = [
    (re.compile(r"insufficient funds: k account .*"), lambda m: _("Not enough coins for this.")),
    (re.compile(r"insufficient funds: .*"), lambda m: _("Not enough money for this.")),
    (re.compile(r"a window needs both window_start and window_end"),
     lambda m: _("A time window needs both a start and an end.")),
    (re.compile(r"window_end must be after window_start"), lambda m: _("The window must end after it starts.")),
    (re.compile(r"the window has already ended"), lambda m: _("The window has already ended.")),
    (re.compile(r"a window may last at most 7 days"), lambda m: _("A window may last at most 7 days.")),
    (re.compile(r"\S+ has no (retail|wholesale) price in (\w+) in force at .*"),
     lambda m: _("There is no price in %(currency)s in force yet.") % {"currency": m.group(2)}),
    (re.compile(r"the utility \S+ cannot cover \d+ Wh: it holds \d+ Wh"),
     lambda m: _("The utility has not got that much energy to sell right now.")),
]


def plain_reason(reason: str | None) -> str:
    """The reason to show for a refusal recorded as ``reason``."""
    text = (reason or "").strip()
    for pattern, say in _KNOWN:
        match = pattern.fullmatch(text)
        if match:
            return say(match)
    return text
