"""``python -m verifier DIR`` or ``python -m verifier --api URL [--token T]``."""

from __future__ import annotations

import argparse
import os
import sys

from .formats import BACKENDS, choose_ed25519
from .sources import SourceError, verify_api, verify_export


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verifier", description=__doc__)
    parser.add_argument("directory", nargs="?", help="an export directory (manage.py ledger_export --out DIR)")
    parser.add_argument("--api", help="base URL of a live read API, e.g. https://host/api/v1/ledger/")
    parser.add_argument("--token", default=os.environ.get("GRIDCOIN_API_TOKEN"),
                        help="API token with scope ledger:read of a utility or auditor (or GRIDCOIN_API_TOKEN)")
    parser.add_argument("--orderer-key", action="append", default=[], metavar="HEX",
                        help="pin an orderer public key (repeat for rotated keys); default: the published ones")
    parser.add_argument("--quorum", type=int, default=None,
                        help="witness cosignatures the latest checkpoint needs (default: as published)")
    parser.add_argument("--workers", type=int, default=None, help="processes for signature checks")
    parser.add_argument("--all", action="store_true", help="report every problem, not only the first")
    parser.add_argument("--ed25519", choices=BACKENDS, default="auto",
                        help="signature checks: libsodium when PyNaCl is installed (auto), or OpenSSL with the "
                             "small-order checks done here; the verdicts are the same")
    args = parser.parse_args(argv)
    if bool(args.directory) == bool(args.api):
        parser.error("give an export directory or --api URL")
    try:
        choose_ed25519(args.ed25519)
    except ValueError as exc:
        parser.error(str(exc))
    options = dict(orderer_keys=args.orderer_key, quorum=args.quorum, first_only=not args.all, workers=args.workers)
    try:
        if args.api:
            report = verify_api(args.api, token=args.token, **options)
        else:
            report = verify_export(args.directory, **options)
    except SourceError as exc:
        print(f"CANNOT VERIFY: {exc}", file=sys.stderr)
        return 2
    if report.ok:
        print(f"OK {report.summary()}")
        return 0
    for problem in report.problems:
        print(f"INVALID: {problem}", file=sys.stderr)
    print(report.summary(), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
