"""One module per payment provider: how its deliveries are verified and mapped to notices."""
