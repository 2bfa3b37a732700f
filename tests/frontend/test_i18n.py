"""The pages in the resident's language: English, हिन्दी or Español, chosen with the switcher in
the footer (a cookie for anonymous visitors, the profile for signed-in users, followed to
every device they sign in on), else the browser's Accept-Language."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.test import Client

from accounts import services as account_services
from accounts.models import Profile
from tests.meters_world import MeterWorld, build_meter_world

pytestmark = pytest.mark.django_db

COOKIE = settings.LANGUAGE_COOKIE_NAME
PASSWORD = "lang-pass-2024"

# One text of the shared layout per language (the "Devices" tab).
DEVICES_TAB = {"en": ">Devices</a>", "hi": ">डिवाइस</a>", "es": ">Dispositivos</a>"}


def html_lang(html: str) -> str:
    return re.search(r'<html lang="([^"]+)"', html).group(1)


def switch(client: Client, language: str, next_url: str = "/"):
    return client.post("/i18n/setlang/", {"language": language, "next": next_url})


@pytest.fixture
def resident(db):
    return account_services.user_signup(username="meera", password=PASSWORD)


@pytest.fixture
def mw(settings) -> MeterWorld:
    return build_meter_world(settings)


# --- anonymous visitors -------------------------------------------------------------------------

def test_english_without_any_hint():
    html = Client().get("/").content.decode()
    assert html_lang(html) == "en" and DEVICES_TAB["en"] in html


@pytest.mark.parametrize("header,lang", [
    ("hi-IN,hi;q=0.9,en;q=0.8", "hi"),
    ("hi", "hi"),
    ("es-PR,es;q=0.9", "es"),
    ("es-419", "es"),
    ("en-IN,en;q=0.9", "en-in"),
    ("fr-FR,fr;q=0.9", "en"),
])
def test_accept_language_chooses_the_first_visit_language(header, lang):
    response = Client().get("/devices/", HTTP_ACCEPT_LANGUAGE=header)
    html = response.content.decode()
    assert html_lang(html) == lang
    assert response["Content-Language"] == lang
    assert DEVICES_TAB[lang.split("-")[0]] in html


def test_en_in_reads_the_english_texts():
    html = Client().get("/devices/", HTTP_ACCEPT_LANGUAGE="en-IN").content.decode()
    assert DEVICES_TAB["en"] in html and "Public devices" in html


def test_the_switcher_sets_a_cookie_that_wins_over_accept_language():
    client = Client()
    response = switch(client, "es", "/devices/")
    assert response.status_code == 302 and response["Location"] == "/devices/"
    assert response.cookies[COOKIE].value == "es"
    assert response.cookies[COOKIE]["max-age"] == settings.LANGUAGE_COOKIE_AGE
    html = client.get("/devices/", HTTP_ACCEPT_LANGUAGE="hi").content.decode()
    assert html_lang(html) == "es" and DEVICES_TAB["es"] in html and "Dispositivos públicos" in html
    # and back to English
    switch(client, "en")
    assert html_lang(client.get("/", HTTP_ACCEPT_LANGUAGE="hi").content.decode()) == "en"


def test_an_unknown_language_changes_nothing(resident):
    client = Client()
    response = switch(client, "xx")
    assert response.status_code == 302 and COOKIE not in response.cookies
    client.force_login(resident)
    response = switch(client, "fr")
    assert COOKIE not in response.cookies and not Profile.objects.filter(user=resident).exists()
    assert html_lang(client.get("/").content.decode()) == "en"


def test_switching_needs_a_post_and_a_safe_next():
    client = Client()
    assert client.get("/i18n/setlang/?language=hi").status_code == 405
    response = switch(client, "hi", "https://evil.example/")
    assert response.status_code == 302 and response["Location"] == "/"


def test_the_switcher_names_each_language_in_itself_and_marks_the_current_one():
    html = Client().get("/devices/?x=1", HTTP_ACCEPT_LANGUAGE="hi").content.decode()
    form = re.search(r'<form class="lang-switch".*?</form>', html, re.S).group(0)
    assert 'action="/i18n/setlang/"' in form and 'name="csrfmiddlewaretoken"' in form
    assert 'name="next" value="/devices/?x=1"' in form
    buttons = re.findall(r'<button type="submit" name="language" value="([^"]+)" lang="([^"]+)" '
                         r'aria-pressed="(true|false)">([^<]+)</button>', form)
    assert buttons == [("en", "en", "false", "English"), ("hi", "hi", "true", "हिन्दी"),
                       ("es", "es", "false", "Español")]
    assert ">भाषा<" in form


def test_english_in_india_stays_en_in_when_english_is_chosen_again():
    html = Client().get("/", HTTP_ACCEPT_LANGUAGE="en-IN").content.decode()
    assert 'value="en-in" lang="en" aria-pressed="true">English<' in html


# --- signed-in users ----------------------------------------------------------------------------

def test_a_signed_in_users_choice_is_stored_and_follows_them_to_another_device(resident):
    phone = Client()
    phone.force_login(resident)
    response = switch(phone, "hi", "/wallet/")
    assert response.cookies[COOKIE].value == "hi"
    assert Profile.objects.get(user=resident).language == "hi"

    # A second phone, never switched, whose browser asks for Spanish: the login answer sets the
    # stored language and every page after it is in Hindi.
    other = Client(HTTP_ACCEPT_LANGUAGE="es")
    assert html_lang(other.get("/accounts/login/").content.decode()) == "es"
    response = other.post("/accounts/login/", {"username": "meera", "password": PASSWORD})
    assert response.status_code == 302
    assert response.cookies[COOKIE].value == "hi"
    html = other.get("/wallet/").content.decode()
    assert html_lang(html) == "hi" and DEVICES_TAB["hi"] in html
    # Still Hindi after signing out on that phone (the cookie), until someone switches.
    other.post("/accounts/logout/")
    assert html_lang(other.get("/").content.decode()) == "hi"


def test_the_stored_choice_wins_over_a_stale_cookie_on_every_request(resident):
    account_services.profile_language_set(user=resident, language="es")
    client = Client(HTTP_ACCEPT_LANGUAGE="hi")
    client.cookies[COOKIE] = "hi"
    client.force_login(resident)
    response = client.get("/devices/")
    assert html_lang(response.content.decode()) == "es"
    assert response.cookies[COOKIE].value == "es"  # brought in line for after sign-out
    # once in line, no cookie is sent again
    assert COOKIE not in client.get("/devices/").cookies
    # A change made on another device applies on the next request here.
    account_services.profile_language_set(user=resident, language="en")
    assert html_lang(client.get("/devices/").content.decode()) == "en"


def test_a_language_picked_before_signing_in_becomes_the_stored_choice(resident):
    client = Client()
    switch(client, "es")
    client.post("/accounts/login/", {"username": "meera", "password": PASSWORD})
    assert Profile.objects.get(user=resident).language == "es"


def test_an_existing_stored_choice_is_not_overwritten_by_the_anonymous_cookie(resident):
    account_services.profile_language_set(user=resident, language="hi")
    client = Client()
    switch(client, "es")
    response = client.post("/accounts/login/", {"username": "meera", "password": PASSWORD})
    assert Profile.objects.get(user=resident).language == "hi"
    assert response.cookies[COOKIE].value == "hi"


def test_signing_up_in_hindi_keeps_hindi(db):
    client = Client()
    switch(client, "hi", "/accounts/signup/")
    html = client.get("/accounts/signup/").content.decode()
    assert "अपना खाता बनाएँ" in html and "यूज़रनेम" in html
    response = client.post("/accounts/signup/", {"username": "ravi", "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302
    assert Profile.objects.get(user__username="ravi").language == "hi"


def test_form_errors_are_translated(db):
    client = Client(HTTP_ACCEPT_LANGUAGE="es")
    html = client.post("/accounts/signup/", {"username": "a b", "password1": PASSWORD,
                                             "password2": PASSWORD + "!"}).content.decode()
    assert "Usa solo letras, números, - y _." in html
    assert "(opcional)" in html


def test_profile_language_set_refuses_unknown_codes(resident):
    with pytest.raises(account_services.LanguageError):
        account_services.profile_language_set(user=resident, language="de")
    assert not Profile.objects.filter(user=resident).exists()


# --- the resident pages in Hindi and Spanish ----------------------------------------------------

@pytest.mark.parametrize("path,persona,texts", [
    ("/", "anonymous", {"hi": "बिजली, जिसे आप पैसे की तरह खर्च कर सकते हैं",
                        "es": "Electricidad que puedes gastar como dinero"}),
    ("/devices/", "anonymous", {"hi": "सार्वजनिक डिवाइस", "es": "Dispositivos públicos"}),
    ("/d/SL-0001", "bob", {"hi": "इस डिवाइस में कॉइन भेजें", "es": "Recargar este dispositivo"}),
    ("/wallet/", "alice", {"hi": "इतिहास", "es": "Historial"}),
    ("/prices/", "anonymous", {"hi": "प्रति kWh दाम", "es": "Precios por kWh"}),
    ("/scan/", "anonymous", {"hi": "या डिवाइस आईडी लिखें", "es": "O escribe el código del dispositivo"}),
])
@pytest.mark.parametrize("lang", ["hi", "es"])
def test_resident_pages_speak_the_chosen_language(mw, path, persona, texts, lang):
    client = Client()
    if persona != "anonymous":
        client.force_login(mw.persona(persona).user)
    switch(client, lang)
    response = client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    assert html_lang(html) == lang
    assert texts[lang] in html


def test_the_device_map_keeps_dot_decimals_in_spanish(mw):
    """Spanish writes 9,5 for 9.5; numbers inside SVG attributes must stay machine numbers."""
    client = Client(HTTP_ACCEPT_LANGUAGE="es")
    html = client.get("/devices/").content.decode()
    coordinates = re.findall(r'\b(?:cx|cy|x|y)="([^"]*)"', html)
    assert coordinates
    for value in coordinates:
        float(value)


# --- ledger refusals ----------------------------------------------------------------------------

@pytest.mark.parametrize("reason,hi,es", [
    ("insufficient funds: k account 'hh:hh-alice' holds 5, needs 9000", "इसके लिए पर्याप्त कॉइन नहीं हैं।",
     "No tienes monedas suficientes para esto."),
    ("the window has already ended", "समय-सीमा पहले ही खत्म हो चुकी है।", "El horario ya terminó."),
    ("gridco-utility has no retail price in INR in force at 2026-01-01T00:00:00+00:00",
     "अभी INR में कोई दाम लागू नहीं है।", "Todavía no hay precio vigente en INR."),
])
def test_known_ledger_refusals_are_said_in_the_readers_language(reason, hi, es):
    from django.utils import translation

    from frontend.refusals import plain_reason

    with translation.override("hi"):
        assert plain_reason(reason) == hi
    with translation.override("es"):
        assert plain_reason(reason) == es
    with translation.override("en"):
        assert plain_reason(reason) != reason  # plain English too, without account keys


def test_an_unknown_refusal_is_shown_as_recorded():
    from django.utils import translation

    from frontend.refusals import plain_reason

    with translation.override("hi"):
        assert plain_reason("reading counter 7 is not after the last accepted 9") == (
            "reading counter 7 is not after the last accepted 9")
    assert plain_reason(None) == ""


# --- e-mails are written in the recipient's language ----------------------------------------------

@pytest.mark.parametrize("language,subject,line", [
    ("hi", "GridCoin: आपका भुगतान पहुँच गया", "आपके वॉलेट में 1.251 kWh जोड़े गए।"),
    ("es", "GridCoin: Tu pago llegó", "Se añadieron 1.251 kWh a tu billetera."),
    ("", "GridCoin: Your payment has landed", "1.251 kWh were added to your wallet."),
])
def test_a_notification_email_speaks_the_recipients_language(mw, django_capture_on_commit_callbacks, mailoutbox,
                                                              celery_eager, language, subject, line):
    """Sent by a worker, which has no request to take a language from."""
    from notifications import services as notification_services
    from notifications.models import Kind

    alice = mw.alice.user
    alice.email = "alice@example.org"
    alice.save(update_fields=["email"])
    if language:
        account_services.profile_language_set(user=alice, language=language)
    with django_capture_on_commit_callbacks(execute=True):
        notification_services.notifications_create(kind=Kind.PAYMENT_CREDITED, event_key="payment-credited:7",
                                                   user_ids=[alice.pk], data={"wh": 1251, "payment": 7},
                                                   url="/wallet/")
    [message] = mailoutbox
    assert message.subject == subject
    assert line in message.body


def test_the_error_pages_speak_the_visitors_language():
    response = Client(HTTP_ACCEPT_LANGUAGE="hi").get("/d/NO-SUCH-DEVICE")
    html = response.content.decode()
    assert response.status_code == 404
    assert html_lang(html) == "hi" and "पेज नहीं मिला" in html
