"""Built-in chaincodes. Importing this package registers them."""

from . import energy, token  # noqa: F401
