"""``token``: the built-in contract that exercises the chaincode API (mint, transfer, burn)."""

from ..contracts import Context, Contract, ContractError, registry
from ..keys import ENERGY
from .energy import require_unreserved

token = registry.register(Contract("token", "Generic multi-asset token: mint, transfer, burn."))


@token.function(orgs={"utility"})
def mint(ctx: Context) -> dict:
    """Utility mints new units of an asset into any account."""
    to, asset, amount = ctx.arg_str("to"), ctx.arg_str("asset"), ctx.arg_int("amount")
    ctx.mint(to, amount, asset)
    ctx.emit("minted", {"to": to, "asset": asset, "amount": amount})
    return {"to": to, "asset": asset, "amount": amount}


@token.function()
def transfer(ctx: Context) -> dict:
    """Move units from an account the invoker's organisation owns to any account."""
    source, to = ctx.arg_str("from"), ctx.arg_str("to")
    asset, amount = ctx.arg_str("asset"), ctx.arg_int("amount")
    if to == "issuance" or source == "issuance":
        raise ContractError("transfers cannot touch the issuance account; use mint or burn")
    ctx.require_owner(source, asset)
    if asset == ENERGY:
        require_unreserved(ctx, source, amount)
    ctx.transfer(source, to, amount, asset)
    ctx.emit("transferred", {"from": source, "to": to, "asset": asset, "amount": amount})
    return {"from": source, "to": to, "asset": asset, "amount": amount}


@token.function()
def burn(ctx: Context) -> dict:
    """Destroy units from an account the invoker's organisation owns."""
    source, asset, amount = ctx.arg_str("from"), ctx.arg_str("asset"), ctx.arg_int("amount")
    ctx.require_owner(source, asset)
    if asset == ENERGY:
        require_unreserved(ctx, source, amount)
    ctx.burn(source, amount, asset)
    ctx.emit("burned", {"from": source, "asset": asset, "amount": amount})
    return {"from": source, "asset": asset, "amount": amount}


@token.function()
def note(ctx: Context) -> dict:
    """Record a note in world state (exercises put/get/delete state)."""
    key = ctx.arg_str("key", max_length=100)
    text = ctx.args.get("text")
    previous = ctx.get_state(key)
    if text is None:
        if previous is None:
            raise ContractError(f"no note {key!r} to delete")
        ctx.del_state(key)
    else:
        if not isinstance(text, str) or len(text) > 1000:
            raise ContractError("argument 'text' must be a string of at most 1000 characters")
        ctx.put_state(key, {"text": text, "by": ctx.invoker.name})
    return {"key": key, "previous": previous}
