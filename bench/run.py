"""``make bench``: every benchmark, each printing its figures next to a baseline from the same run."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import (  # noqa: E402
    billing_bench,
    charity_bench,
    gateway_bench,
    ledger_bench,
    payments_bench,
    reconcile_bench,
    verifier_bench,
    witness_bench,
)

if __name__ == "__main__":
    ledger_bench.main()
    payments_bench.main()
    reconcile_bench.main()
    charity_bench.main()
    billing_bench.main()
    gateway_bench.main()
    verifier_bench.main()
    witness_bench.main()
