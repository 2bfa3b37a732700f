"""Built-in chaincodes. Importing this package registers them."""

from . import token  # noqa: F401
