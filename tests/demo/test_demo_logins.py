"""The home page's list of demo logins: shown in the embedded default once the demo is seeded,
only for the demo users that exist, never in production; read lazily, so other pages do not
pay for it."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from demo.organisations import DEMO_LOGINS, DEMO_PASSWORD
from demo.selectors import demo_logins_shown

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded(db):
    call_command("seed_demo", stdout=StringIO())


def test_home_lists_no_demo_logins_before_the_seed(client):
    assert demo_logins_shown() == []
    assert "Demo logins" not in client.get("/").content.decode()


def test_home_lists_every_demo_login_in_the_embedded_default(client, seeded, settings):
    assert settings.PRODUCTION is False  # the tests run with the embedded default
    html = client.get("/").content.decode()
    assert "Demo logins" in html and DEMO_PASSWORD in html
    for login in DEMO_LOGINS:
        assert f'<code class="username">{login.username}</code>' in html
        assert login.role.replace("'", "&#x27;") in html
    assert demo_logins_shown() == DEMO_LOGINS


def test_home_lists_only_demo_logins_that_exist(client, seeded):
    get_user_model().objects.filter(username="bob").update(username="robert")
    html = client.get("/").content.decode()
    assert '<code class="username">alice</code>' in html
    assert '<code class="username">bob</code>' not in html


def test_production_lists_no_demo_logins_even_when_the_users_exist(client, seeded, settings):
    settings.PRODUCTION = True
    assert demo_logins_shown() == []
    html = client.get("/").content.decode()
    assert "Demo logins" not in html and DEMO_PASSWORD not in html
    assert '<code class="username">' not in html


def test_pages_that_do_not_show_the_list_do_not_query_for_it(client, seeded):
    with CaptureQueriesContext(connection) as login_page:
        assert client.get("/accounts/login/").status_code == 200
    with CaptureQueriesContext(connection) as home_page:
        assert client.get("/").status_code == 200

    def demo_user_queries(queries) -> list[str]:
        return [q["sql"] for q in queries if "auth_user" in q["sql"] and "'carol'" in q["sql"]]

    assert demo_user_queries(login_page.captured_queries) == []
    assert len(demo_user_queries(home_page.captured_queries)) == 1
