"""``POST /api/v1/meters/<meter_id>/readings``: the HTTP path for signed readings (meters
without MQTT, the embedded simulator). No session or password: the meter's Ed25519 signature
over the ledger proposal is the authentication, checked by the ledger itself."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ParseError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from .models import ReceivedVia
from .services import readings_ingest

MAX_READINGS_PER_REQUEST = 1_000


class ReadingSerializer(serializers.Serializer):
    meter = serializers.CharField(help_text="the meter's public id (optional: the URL names it)", required=False)
    counter = serializers.IntegerField(min_value=0, help_text="monotonic, one more per reading")
    import_wh = serializers.IntegerField(min_value=0, help_text="cumulative import register, Wh (OBIS 1.8.0)")
    export_wh = serializers.IntegerField(min_value=0, help_text="cumulative export register, Wh (OBIS 2.8.0)")
    timestamp = serializers.DateTimeField(help_text="ISO 8601 with a timezone")
    signature = serializers.CharField(help_text="base64 Ed25519 signature over the ledger proposal "
                                                "(ledger.readings.reading_payload)")


class OutcomeSerializer(serializers.Serializer):
    meter = serializers.CharField()
    counter = serializers.IntegerField(allow_null=True)
    status = serializers.ChoiceField(choices=["applied", "replayed", "rejected"])
    reason = serializers.CharField(allow_blank=True)
    tx_hash = serializers.CharField(allow_blank=True)


class IngestResponseSerializer(serializers.Serializer):
    readings = OutcomeSerializer(many=True)
    applied = serializers.IntegerField()
    replayed = serializers.IntegerField()
    rejected = serializers.IntegerField()


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


def _bad_request(message: str) -> Response:
    return Response({"detail": message}, status=status.HTTP_400_BAD_REQUEST)


class MeterReadings(APIView):
    """Submit one signed cumulative reading (a JSON object) or several (a JSON array, oldest
    first). Each reading is verified and applied by the ledger (``consumer.burn`` or
    ``generator.mint``) and kept with its outcome: ``applied``, ``replayed`` (the same reading
    delivered again: applied once) or ``rejected`` with the reason (forged, older counter,
    register went backwards, malformed, unknown meter). The response is 200 with one outcome
    per reading; 400 only when the body itself is unusable (not JSON, wrong shape, another
    meter's reading)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="meter_readings_submit",
        request=ReadingSerializer(many=True),
        responses={200: IngestResponseSerializer, 400: ErrorSerializer},
        examples=[OpenApiExample("one reading", request_only=True, value={
            "meter": "SL-0001", "counter": 42, "import_wh": 12_500, "export_wh": 0,
            "timestamp": "2026-11-21T18:00:00+00:00", "signature": "<base64, 64 bytes>"})],
    )
    def post(self, request, meter_id: str):
        if request.content_type.split(";")[0].strip() != "application/json":
            return _bad_request("send the reading as application/json")
        try:
            body = request.data
        except ParseError as exc:
            return _bad_request(f"the body is not valid JSON: {exc.detail}")
        messages = body if isinstance(body, list) else [body]
        if not messages:
            return _bad_request("the list of readings is empty")
        if len(messages) > MAX_READINGS_PER_REQUEST:
            return _bad_request(f"at most {MAX_READINGS_PER_REQUEST} readings per request")
        for message in messages:
            if not isinstance(message, dict):
                return _bad_request("each reading is a JSON object")
            claimed = message.get("meter", meter_id)
            if claimed != meter_id:
                return _bad_request(f"a reading of meter {claimed!r} was posted to meter {meter_id!r}")
        outcomes = readings_ingest([{**m, "meter": meter_id} for m in messages], received_via=ReceivedVia.HTTP)
        counts = {s: sum(1 for o in outcomes if o.status == s) for s in ("applied", "replayed", "rejected")}
        return Response({"readings": [{k: v for k, v in o.as_dict().items() if k != "result"} for o in outcomes],
                         **counts})
