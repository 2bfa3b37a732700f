import pytest


@pytest.fixture
def world(db):
    from tests.charity.world import build_charity_world

    return build_charity_world()
