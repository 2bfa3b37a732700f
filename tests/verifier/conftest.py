"""The standalone verifier lives in verifier/verifier (its own package): put it on the path."""

import sys
from pathlib import Path

VERIFIER_ROOT = Path(__file__).resolve().parents[2] / "verifier"
if str(VERIFIER_ROOT) not in sys.path:
    sys.path.insert(0, str(VERIFIER_ROOT))
