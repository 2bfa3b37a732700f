"""Integer amounts shown as decimals without floats (k: Wh shown as kWh; fiat: minor units)."""


def format_amount(amount: int, scale: int) -> str:
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**scale)
    return f"{sign}{whole}.{frac:0{scale}d}" if scale else f"{sign}{whole}"


def kwh(wh: int) -> str:
    """Energy (Wh, the k's unit) shown as kWh with three decimals."""
    return format_amount(wh, 3)
