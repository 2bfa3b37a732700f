"""Home page and the ledger explorer. Views only read, through selectors."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from ledger import selectors as ledger
from ledger.models import Transaction

from . import selectors

BLOCKS_PER_PAGE = 20
RECENT_TRANSACTIONS = 10


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    demo_logins, demo_password = selectors.demo_logins_present()
    return render(
        request,
        "frontend/home.html",
        {
            "organisations": selectors.organisations_with_accounts(request.user),
            "demo_logins": demo_logins,
            "demo_password": demo_password,
        },
    )


@require_GET
@login_required
def explorer(request: HttpRequest) -> HttpResponse:
    """Latest blocks, newest first; ``?before=<number>`` pages back. An htmx request for the
    next page gets only the rows."""
    blocks = ledger.blocks_visible_to(request.user).order_by("-number")
    before = request.GET.get("before", "")
    if before:
        if not before.isdigit():
            raise Http404("bad page")
        blocks = blocks.filter(number__lt=int(before))
    page = list(blocks[: BLOCKS_PER_PAGE + 1])
    context = {
        "blocks": page[:BLOCKS_PER_PAGE],
        "older": page[BLOCKS_PER_PAGE - 1].number if len(page) > BLOCKS_PER_PAGE else None,
    }
    if request.htmx:
        return render(request, "frontend/explorer/_block_rows.html", context)
    context["recent"] = ledger.transactions_visible_to(request.user).order_by("-id")[:RECENT_TRANSACTIONS]
    context["unsealed"] = ledger.transactions_visible_to(request.user).filter(block__isnull=True).count()
    return render(request, "frontend/explorer/index.html", context)


@require_GET
@login_required
def block_detail(request: HttpRequest, number: int) -> HttpResponse:
    block = get_object_or_404(ledger.blocks_visible_to(request.user), number=number)
    transactions = ledger.transactions_visible_to(request.user).filter(block=block)
    return render(
        request,
        "frontend/explorer/block.html",
        {
            "the_block": block,  # a context variable named "block" is shadowed inside {% block %}
            "transactions": transactions,
            "hidden": block.tx_count - len(transactions),
        },
    )


@require_GET
@login_required
def transaction_detail(request: HttpRequest, tx_hash: str) -> HttpResponse:
    tx: Transaction = get_object_or_404(ledger.transactions_visible_to(request.user), tx_hash=tx_hash)
    return render(
        request,
        "frontend/explorer/transaction.html",
        {
            "tx": tx,
            "postings": tx.postings.select_related("account", "asset").order_by("id"),
            "state_writes": tx.state_writes.order_by("id"),
            "proof": ledger.transaction_proof(tx),
        },
    )
