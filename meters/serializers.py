from django.core.validators import RegexValidator
from django.urls import reverse
from rest_framework import serializers

from ledger.units import kwh
from wallet.selectors import HistoryEntry

from .selectors import DeviceState

# Amounts go into the ledger's canonical JSON (RFC 8785), where integers past 2**53 - 1 lose
# precision, so the API refuses them up front.
MAX_JSON_INTEGER = 2**53 - 1


class StrictCharField(serializers.CharField):
    """A JSON string only: DRF's CharField would take ``0`` as ``"0"``, against the schema."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer only: DRF's IntegerField would take ``"5"`` and ``5.0``, against the schema."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class WindowSerializer(serializers.Serializer):
    """A funded window as the public sees it (amounts and times; the funder stays private)."""

    start = serializers.CharField()
    end = serializers.CharField()
    amount = serializers.IntegerField(help_text="Wh funded for the window")
    remaining = serializers.IntegerField(help_text="Wh of it not yet used")


class DeviceStateSerializer(serializers.Serializer):
    public_id = serializers.CharField(source="device.public_id")
    name = serializers.CharField(source="device.name")
    kind = serializers.CharField(source="device.kind")
    state = serializers.CharField(source="device.state", help_text="enrolment: registered, active or retired")
    is_public = serializers.BooleanField(source="device.is_public")
    latitude = serializers.DecimalField(source="device.latitude", max_digits=9, decimal_places=6, allow_null=True)
    longitude = serializers.DecimalField(source="device.longitude", max_digits=9, decimal_places=6, allow_null=True)
    owner = serializers.CharField(source="device.organisation.msp_id")
    balance_wh = serializers.IntegerField(source="balance")
    balance_kwh = serializers.SerializerMethodField()
    reserved_wh = serializers.IntegerField(source="reserved")
    spendable_wh = serializers.IntegerField(source="spendable")
    relay = serializers.ChoiceField(choices=["on", "off"])
    windows = WindowSerializer(source="raw_windows", many=True)

    def get_balance_kwh(self, state: DeviceState) -> str:
        return kwh(state.balance)


class FundRequestSerializer(serializers.Serializer):
    amount_wh = StrictIntegerField(min_value=1, max_value=MAX_JSON_INTEGER,
                                 help_text="Wh to move from your household account")
    window_start = serializers.DateTimeField(required=False, help_text="ISO 8601; with window_end")
    window_end = serializers.DateTimeField(required=False, help_text="ISO 8601; with window_start")


class FundResultSerializer(serializers.Serializer):
    tx_hash = serializers.CharField()
    replayed = serializers.BooleanField()
    device = serializers.CharField(source="device.public_id")
    amount_wh = serializers.IntegerField()
    balance_wh = serializers.IntegerField(help_text="the device's balance right after funding")
    relay = serializers.ChoiceField(choices=["on", "off"])
    window = serializers.DictField(allow_null=True)
    transaction = serializers.SerializerMethodField()

    def get_transaction(self, result) -> str:
        return reverse("ledger:transaction-detail", args=[result.tx_hash])


class BalanceSerializer(serializers.Serializer):
    key = serializers.CharField(source="account.key")
    asset = serializers.CharField()
    balance = serializers.IntegerField(source="account.balance", help_text="stored units: Wh or minor units")
    display = serializers.CharField(help_text="decimal in the display unit")
    unit = serializers.CharField()


class WalletOrganisationSerializer(serializers.Serializer):
    msp_id = serializers.CharField(source="organisation.msp_id")
    name = serializers.CharField(source="organisation.name")
    org_type = serializers.CharField(source="organisation.org_type")
    energy = BalanceSerializer(many=True, help_text="energy accounts the organisation spends from")
    devices = BalanceSerializer(many=True, help_text="coins on the organisation's own devices")
    credit = BalanceSerializer(many=True, help_text="fiat credit (minor units)")


class WalletSerializer(serializers.Serializer):
    organisations = WalletOrganisationSerializer(many=True)


class HistoryEntrySerializer(serializers.Serializer):
    tx_hash = serializers.CharField(source="tx.tx_hash")
    chaincode = serializers.CharField(source="tx.chaincode")
    function = serializers.CharField(source="tx.function")
    title = serializers.CharField()
    status = serializers.CharField(source="tx.status")
    reason = serializers.CharField(source="tx.reason")
    proposed_at = serializers.DateTimeField(source="tx.proposed_at")
    block = serializers.IntegerField(source="tx.block.number", allow_null=True, default=None)
    energy_wh = serializers.IntegerField(allow_null=True, help_text="net change of your k accounts")
    fiat = serializers.DictField(child=serializers.IntegerField(), help_text="net change of your fiat credit")
    counterparties = serializers.ListField(child=serializers.CharField())
    transaction = serializers.SerializerMethodField()
    proof = serializers.SerializerMethodField()

    def get_transaction(self, entry: HistoryEntry) -> str:
        return reverse("ledger:transaction-detail", args=[entry.tx.tx_hash])

    def get_proof(self, entry: HistoryEntry) -> str:
        return reverse("ledger:transaction-proof", args=[entry.tx.tx_hash])


class PriceEntrySerializer(serializers.Serializer):
    effective_from = serializers.CharField(source="from")
    price = serializers.IntegerField(help_text="minor units per kWh")


class PriceScheduleSerializer(serializers.Serializer):
    utility = serializers.CharField()
    kind = serializers.CharField()
    currency = serializers.CharField()
    current = serializers.IntegerField(allow_null=True, help_text="price in force now (minor units per kWh)")
    entries = PriceEntrySerializer(many=True)


class PriceSchedulesSerializer(serializers.Serializer):
    schedules = PriceScheduleSerializer(many=True)


class PriceSetSerializer(PriceScheduleSerializer):
    """The schedule of the kind and currency just set, with the ledger transaction that set it."""

    tx_hash = serializers.CharField()


class PriceRequestSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["retail", "wholesale"])
    currency = StrictCharField(max_length=3, validators=[RegexValidator(r"^[A-Z]{3}$", "an ISO 4217 code: USD, INR")],
                               help_text="ISO 4217 code of the fiat asset")
    price = StrictIntegerField(min_value=1, max_value=MAX_JSON_INTEGER, help_text="minor units per kWh")
    effective_from = serializers.DateTimeField()
