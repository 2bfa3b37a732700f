"""Standalone verifier of GridCoin ledgers: imports nothing of the GridCoin project.

``verify_export(directory)`` checks a ``manage.py ledger_export`` directory, ``verify_api(url,
token=...)`` a live read API; both return a ``Report`` (``ok``, ``problems``, ``summary()``).
The formats are specified in docs/ledger-format.md."""

from .checker import Checker, Problem, Report
from .sources import SourceError, verify_api, verify_export

__all__ = ["Checker", "Problem", "Report", "SourceError", "verify_api", "verify_export"]
__version__ = "1.0.0"
