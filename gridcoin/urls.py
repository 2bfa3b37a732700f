from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from accounts import views as accounts_views
from gridcoin.api_docs import SwaggerView

# Webhooks first: banks post to them at volume, and a path is matched against every pattern
# listed before its own (Django records each one tried, which cost more than the match).
urlpatterns = [
    path("webhooks/", include("payments.urls_webhooks")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/ledger/", include("ledger.urls")),
    path("api/v1/", include("meters.urls")),
    path("api/v1/", include("iot_gateway.urls")),
    path("accounts/", include("accounts.urls")),
    # The language switcher (Django's set_language, remembering a signed-in user's choice).
    path("i18n/setlang/", accounts_views.set_language, name="set_language"),
    path("payments/", include("payments.urls")),
    path("api/v1/payments/", include("payments.api_urls")),
    path("notifications/", include("notifications.urls")),
    # /campaigns/... and /group/... (one namespace, so the patterns carry their prefixes).
    path("", include("charity.urls")),
    path("billing/", include("billing.urls")),
    path("", include("frontend.urls")),
]

handler404 = "gridcoin.errors.not_found"
