"""Built-in chaincodes. Importing this package registers them."""

from . import billing, billing_dues, charity, config, energy, reversals, token  # noqa: F401
