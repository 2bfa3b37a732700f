class DemoSeedError(RuntimeError):
    """The database holds something under a demo name that the seed did not make (an
    organisation of another type, a user without the demo role, an idempotency key used for
    another body): seeding over it would hand the demo's rights to a stranger, so it stops."""
