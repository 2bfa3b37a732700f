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


# The readings a request carries, as documented. Each is checked by the ingest service, not
# here: a malformed reading in a meter's batch is kept and answered ``rejected`` with its reason,
# so the batch's other readings still count. The fields are therefore described, not typed: a
# reading of the wrong shape is a valid request with a ``rejected`` outcome.
READING_SCHEMA = {
    "type": "object",
    "description": "A signed cumulative reading. One that is malformed (a field missing or of the wrong type) "
                   "is kept and answered `rejected` with the reason; it does not refuse the request. A reading "
                   "may also name its meter (`meter`, a string): naming another meter than the URL's refuses "
                   "the request (400).",
    "properties": {
        "counter": {"description": "integer >= 0, monotonic, one more per reading"},
        "import_wh": {"description": "integer >= 0: cumulative import register, Wh (OBIS 1.8.0)"},
        "export_wh": {"description": "integer >= 0: cumulative export register, Wh (OBIS 2.8.0)"},
        "timestamp": {"description": "string: ISO 8601 time with a timezone"},
        "signature": {"description": "string: base64 Ed25519 signature over the ledger proposal "
                                     "(ledger.readings.reading_payload)"},
    },
}
READINGS_REQUEST = {"oneOf": [
    READING_SCHEMA,
    {"type": "array", "items": READING_SCHEMA, "minItems": 1, "maxItems": MAX_READINGS_PER_REQUEST,
     "description": "several readings, oldest first"},
]}


class OutcomeSerializer(serializers.Serializer):
    meter = serializers.CharField(allow_blank=True)
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
        request={"application/json": READINGS_REQUEST},
        responses={200: IngestResponseSerializer, 400: ErrorSerializer},
        examples=[OpenApiExample("one reading", request_only=True, value={
            "counter": 42, "import_wh": 12_500, "export_wh": 0,
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
            # A reading naming another meter is refused whole; a ``meter`` that is no string names
            # nothing, and the URL's meter stands (its signature must still verify for that meter).
            claimed = message.get("meter", meter_id)
            if isinstance(claimed, str) and claimed != meter_id:
                return _bad_request(f"a reading of meter {claimed!r} was posted to meter {meter_id!r}")
        outcomes = readings_ingest([{**m, "meter": meter_id} for m in messages], received_via=ReceivedVia.HTTP)
        counts = {s: sum(1 for o in outcomes if o.status == s) for s in ("applied", "replayed", "rejected")}
        return Response({"readings": [{k: v for k, v in o.as_dict().items() if k != "result"} for o in outcomes],
                         **counts})
