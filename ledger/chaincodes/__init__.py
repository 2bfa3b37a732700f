"""Built-in chaincodes. Importing this package registers them."""

from . import energy, reversals, token  # noqa: F401
