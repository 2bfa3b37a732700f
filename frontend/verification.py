"""The texts of the in-browser "Verify" (static/frontend/verify.js), translated here and handed
to the page as a JSON script element: the script itself carries no words. Placeholders are
Python's ``%(name)s``, which verify.js fills in."""

from django.urls import reverse
from django.utils.translation import gettext as _


def api_base() -> str:
    """The ledger read API's prefix (``/api/v1/ledger/``), whatever the URLconf mounts it at."""
    return reverse("ledger:block-list").removesuffix("blocks/")


def verify_trust() -> dict:
    """The keys the in-browser check trusts, rendered into the page (not fetched alongside what
    it checks): the orderer's public key, the log's origin, the cosignatures required and the
    registered witnesses' keys. A response tampered on its way cannot bring its own keys."""
    from ledger import log
    from ledger.sealing import orderer_public_hex

    return {"orderer": {"public_key": orderer_public_hex(), "origin": log.origin(), "quorum": log.quorum()},
            "witnesses": [{"name": w.qualified_name, "public_key": bytes(w.public_key).hex()}
                          for w in log.witnesses()]}


def verify_texts() -> dict[str, str]:
    return {
        "checking": _("Checking in this browser…"),
        "status_ok": _("Passed"),
        "status_failed": _("Failed"),
        "status_skipped": _("Not checked"),
        "status_unavailable": _("Could not check"),
        # 1. the transaction's bytes
        "hash_ok": _("The transaction’s bytes hash to its hash %(hash)s…"),
        "hash_other_tx": _("The server sent the document of another transaction."),
        "hash_mismatch": _("The transaction’s bytes do not hash to its hash."),
        "proposal_not_in_document": _("The signed proposal is not the one inside the transaction’s bytes."),
        # 2. the invoker's signature
        "signature_ok": _("%(invoker)s signed it, with the key the ledger held for %(invoker)s at the time."),
        "invoker_not_signer": _("The signed proposal does not name %(invoker)s as its invoker."),
        "invoker_signature_bad": _("The invoker’s signature does not match %(invoker)s’s key."),
        # 3. inclusion in the block
        "inclusion_ok": _("The inclusion proof leads from this transaction (%(index)s of %(size)s) to the "
                          "Merkle root of block %(block)s."),
        "header_missing": _("The server did not send the block’s signed header."),
        "proof_other_tx": _("The inclusion proof is for another transaction."),
        "proof_bad": _("The inclusion proof does not lead to the Merkle root of block %(block)s."),
        # 4. the block header and the orderer
        "header_ok": _("Block %(block)s’s header hashes to its header hash and is signed by the orderer "
                       "(key %(key)s…)."),
        "header_other_block": _("The transaction and its inclusion proof name different blocks."),
        "header_hash_bad": _("Block %(block)s’s header does not hash to its header hash."),
        "header_signature_bad": _("The block’s signature does not match the orderer’s key."),
        # 5. the checkpoint and the witnesses
        "witnesses_ok": _("The checkpoint of block %(block)s (%(size)s transactions so far, this one included) is "
                          "signed by the orderer. Witness cosignatures: %(valid)s valid, %(quorum)s required "
                          "(%(names)s)."),
        "witnesses_none_required": _("The checkpoint of block %(block)s (%(size)s transactions so far, this one "
                                     "included) is signed by the orderer; no witness cosignatures are required on "
                                     "this ledger."),
        "log_inclusion_bad": _("This transaction is not in the ledger log that the checkpoint of block %(block)s "
                               "commits to."),
        "checkpoint_missing": _("No checkpoint of block %(block)s is published, so no witness vouches for it."),
        "checkpoint_malformed": _("The block’s checkpoint is malformed."),
        "checkpoint_other_block": _("The checkpoint does not cover block %(block)s and its header hash."),
        "checkpoint_signature_bad": _("The checkpoint’s signature does not match the orderer’s key."),
        "cosignature_bad": _("The cosignature of %(bad)s does not match the witness’s key."),
        "quorum_missing": _("Witness cosignatures: only %(valid)s valid, %(quorum)s required."),
        # whole-run outcomes
        "skipped": _("Not checked: an earlier check failed."),
        "no_ed25519": _("This browser cannot check Ed25519 signatures (its WebCrypto lacks Ed25519), so this "
                        "was not checked. A current Chrome, Edge, Firefox or Safari can."),
        "no_webcrypto": _("This browser offers no WebCrypto on this page (it needs a secure https connection), "
                          "so nothing could be checked."),
        "fetch_failed": _("Could not load %(url)s (HTTP %(status)s)."),
        "network_failed": _("Could not reach %(url)s."),
        "unexpected": _("The check stopped on an unexpected error: %(message)s"),
        "trust_missing": _("This page carries no orderer key to check against, so nothing could be checked."),
        "summary_genuine": _("This transaction is genuine: its bytes match its hash, %(invoker)s signed it, and "
                             "it is in block %(block)s as the orderer signed it (witness cosignatures: %(valid)s)."),
        "summary_failed": _("This transaction could not be verified: %(reason)s"),
        "summary_incomplete": _("Not fully verified: %(reason)s"),
    }
