"""Built-in chaincodes. Importing this package registers them."""

from . import charity, energy, reversals, token  # noqa: F401
