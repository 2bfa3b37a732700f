"""Read API under /api/v1/payments/: the webhook audit, for utility and bank staff."""

from rest_framework import generics, serializers
from rest_framework.exceptions import PermissionDenied

from . import selectors
from .models import WebhookEvent


class WebhookEventSerializer(serializers.ModelSerializer):
    bank = serializers.CharField(source="organisation.msp_id", default=None, read_only=True)
    # Plain strings: a second "status" enum would collide with the ledger's in the schema.
    status = serializers.CharField(read_only=True, help_text="applied, duplicate, rejected or ignored")
    provider = serializers.CharField(read_only=True, help_text="bank or stripe")

    class Meta:
        model = WebhookEvent
        fields = ["id", "provider", "bank", "event_id", "event_type", "payer", "payee", "amount", "currency", "status",
                  "reason", "http_status", "received_at", "tx_hash", "result"]


class WebhookEventList(generics.ListAPIView):
    """Every webhook delivery the caller may see, newest first; filter with ?status= and ?provider=."""

    required_scopes = {"GET": "payments:read"}

    serializer_class = WebhookEventSerializer

    def get_queryset(self):
        if not selectors.can_view_webhook_events(self.request.user):
            raise PermissionDenied("the webhook audit is for utility and bank staff")
        qs = selectors.webhook_events_visible_to(self.request.user)
        for name in ("status", "provider"):
            if self.request.query_params.get(name):
                qs = qs.filter(**{name: self.request.query_params[name]})
        return qs
