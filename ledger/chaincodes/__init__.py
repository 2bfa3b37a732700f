"""Built-in chaincodes. Importing this package registers them."""

from . import billing, charity, energy, reversals, token  # noqa: F401
