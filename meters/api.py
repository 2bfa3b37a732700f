"""REST under /api/v1/: wallet, devices (public state, funding) and prices. Thin: parse, call
one selector or service, serialise."""

from __future__ import annotations

import re
import uuid

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api_auth import TokenHasScope
from ledger.serializers import DetailSerializer
from wallet import selectors as wallet
from wallet import services as wallet_services

from . import selectors, services
from .serializers import (
    DeviceStateSerializer,
    FundRequestSerializer,
    FundResultSerializer,
    HistoryEntrySerializer,
    PriceRequestSerializer,
    PriceScheduleSerializer,
    PriceSchedulesSerializer,
    PriceSetSerializer,
    WalletOrganisationSerializer,
    WalletSerializer,
)

# 1 to 200 visible ASCII characters (a UUID fits): what the services accept, written so the
# schema and the check below say the same thing.
IDEMPOTENCY_KEY = re.compile(r"[!-~]{1,200}")
_KEY_SCHEMA = {"type": "string", "pattern": "^[!-~]{1,200}$"}
IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key", _KEY_SCHEMA, OpenApiParameter.HEADER, required=True,
    description="Unique per intended funding; a retry with the same key and body returns the first result.",
)
PRICE_IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key", _KEY_SCHEMA, OpenApiParameter.HEADER, required=False,
    description="Optional: a retry with the same key and body sets the price once.",
)


def _error(message: str, code: int) -> Response:
    return Response({"detail": message}, status=code)


class WalletBalances(APIView):
    """The signed-in user's organisations with their energy (Wh) and fiat credit balances."""

    required_scopes = {"GET": "wallet:read"}

    @extend_schema(responses=WalletSerializer)
    def get(self, request):
        return Response({"organisations": WalletOrganisationSerializer(wallet.wallet_balances(request.user),
                                                                         many=True).data})


class WalletHistory(generics.ListAPIView):
    """Transactions of the user's organisations, newest first, with links to each ledger
    transaction and its inclusion proof."""

    required_scopes = {"GET": "wallet:read"}
    serializer_class = HistoryEntrySerializer

    def get_queryset(self):
        return wallet.wallet_transactions(self.request.user).prefetch_related("postings__account",
                                                                                  "postings__asset")

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        entries = wallet.history_entries(request.user, page)
        return self.get_paginated_response(self.get_serializer(entries, many=True).data)


class DeviceList(generics.ListAPIView):
    """Public devices anyone may fund (street lights, stadium, market square) and their state."""

    permission_classes = [AllowAny, TokenHasScope]
    required_scopes = {"GET": "devices:read"}
    serializer_class = DeviceStateSerializer

    def get_queryset(self):
        return selectors.public_devices()

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(selectors.device_states(page), many=True).data)


class DeviceDetail(APIView):
    """A device's public state by its public id (the QR code's id): no consumption history."""

    permission_classes = [AllowAny, TokenHasScope]
    required_scopes = {"GET": "devices:read"}

    @extend_schema(responses=DeviceStateSerializer)
    def get(self, request, public_id: str):
        device = selectors.device_by_public_id(public_id)
        if device is None:
            raise Http404("no such device")
        return Response(DeviceStateSerializer(selectors.device_state(device)).data)


class DeviceFund(APIView):
    """Fund a device from your household account, optionally for a time window."""

    required_scopes = {"POST": "devices:fund"}

    @extend_schema(request=FundRequestSerializer, parameters=[IDEMPOTENCY_HEADER],
                   responses={201: FundResultSerializer,
                              409: OpenApiResponse(DetailSerializer, description="the Idempotency-Key was used "
                                                                                 "with a different body")})
    def post(self, request, public_id: str):
        key = request.headers.get("Idempotency-Key", "")
        if not IDEMPOTENCY_KEY.fullmatch(key):
            return _error("the Idempotency-Key header is required: 1 to 200 visible ASCII characters",
                          status.HTTP_400_BAD_REQUEST)
        body = FundRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            result = services.device_fund(user=request.user, public_id=public_id, amount_wh=data["amount_wh"],
                                          window_start=data.get("window_start"), window_end=data.get("window_end"),
                                          idempotency_key=key)
        except services.DeviceNotFound as exc:
            return _error(str(exc), status.HTTP_404_NOT_FOUND)
        except services.FundingConflict as exc:
            return _error(str(exc), status.HTTP_409_CONFLICT)
        except services.NotPermitted as exc:
            return _error(str(exc), status.HTTP_403_FORBIDDEN)
        except services.FundingRejected as exc:
            return Response({"detail": str(exc), "tx_hash": exc.result.tx_hash}, status=status.HTTP_400_BAD_REQUEST)
        except services.DeviceError as exc:
            return _error(str(exc), status.HTTP_400_BAD_REQUEST)
        return Response(FundResultSerializer(result).data, status=status.HTTP_201_CREATED)


class Prices(APIView):
    """Price schedules of every utility (anyone may read); utility staff add prices."""

    required_scopes = {"GET": "prices:read", "POST": "prices:write"}

    def get_permissions(self):
        return [AllowAny() if self.request.method in ("GET", "HEAD") else IsAuthenticated(), TokenHasScope()]

    @extend_schema(responses=PriceSchedulesSerializer)
    def get(self, request):
        return Response({"schedules": PriceScheduleSerializer(wallet.price_schedules(), many=True).data})

    @extend_schema(request=PriceRequestSerializer, parameters=[PRICE_IDEMPOTENCY_HEADER],
                   responses={201: PriceSetSerializer,
                              409: OpenApiResponse(DetailSerializer, description="the Idempotency-Key was used "
                                                                                 "with a different price")})
    def post(self, request):
        try:
            utility = wallet_services.utility_membership(request.user).organisation
        except wallet_services.NotPermitted as exc:
            return _error(str(exc), status.HTTP_403_FORBIDDEN)
        body = PriceRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        given = request.headers.get("Idempotency-Key")
        key = uuid.uuid4().hex if given is None else given
        if not IDEMPOTENCY_KEY.fullmatch(key):
            return _error("the Idempotency-Key header, when given, is 1 to 200 visible ASCII characters",
                          status.HTTP_400_BAD_REQUEST)
        try:
            result = wallet_services.price_set(user=request.user, kind=data["kind"], currency=data["currency"],
                                               price=data["price"], effective_from=data["effective_from"],
                                               idempotency_key=key)
        except wallet_services.PriceConflict as exc:
            return _error(str(exc), status.HTTP_409_CONFLICT)
        except wallet_services.PriceError as exc:
            return _error(str(exc), status.HTTP_400_BAD_REQUEST)
        schedule = wallet.price_schedule(utility.msp_id, data["kind"], data["currency"])
        return Response({"tx_hash": result.tx_hash, **PriceScheduleSerializer(schedule).data},
                        status=status.HTTP_201_CREATED)
