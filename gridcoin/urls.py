from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/ledger/", include("ledger.urls")),
    path("api/v1/", include("meters.urls")),
    path("api/v1/", include("iot_gateway.urls")),
    path("accounts/", include("accounts.urls")),
    path("webhooks/", include("payments.urls_webhooks")),
    path("payments/", include("payments.urls")),
    path("api/v1/payments/", include("payments.api_urls")),
    path("", include("frontend.urls")),
]
