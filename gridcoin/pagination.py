"""Limit/offset pagination that refuses what its schema does not allow.

DRF's ``LimitOffsetPagination`` quietly falls back to its defaults on ``?limit=abc``,
``?offset=-3`` or a repeated parameter, so a caller's mistake returns a page it did not ask for.
Here such a query is a 400 with the parameter named, and the schema states the bounds.
"""

from __future__ import annotations

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination

MAX_LIMIT = 500
# PostgreSQL's OFFSET is a bigint; a page past every row is simply empty, so any cap that fits
# the column is enough, and 2**31 - 1 is far past any table here.
MAX_OFFSET = 2**31 - 1


class StrictLimitOffsetPagination(LimitOffsetPagination):
    max_limit = MAX_LIMIT

    def _integer(self, request, name: str, *, minimum: int, maximum: int, default: int) -> int:
        values = request.query_params.getlist(name)
        if not values:
            return default
        if len(values) > 1:
            raise ValidationError({name: [f"Give {name} at most once."]})
        text = values[0]
        if not (text.isascii() and text.isdigit()):
            raise ValidationError({name: [f"{name} is a whole number from {minimum} to {maximum}."]})
        value = int(text)
        if not minimum <= value <= maximum:
            raise ValidationError({name: [f"{name} is a whole number from {minimum} to {maximum}."]})
        return value

    def get_limit(self, request):
        return self._integer(request, self.limit_query_param, minimum=1, maximum=MAX_LIMIT,
                             default=self.default_limit)

    def get_offset(self, request):
        return self._integer(request, self.offset_query_param, minimum=0, maximum=MAX_OFFSET, default=0)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        bounds = {self.limit_query_param: (1, MAX_LIMIT), self.offset_query_param: (0, MAX_OFFSET)}
        for parameter in parameters:
            low, high = bounds[parameter["name"]]
            parameter["schema"] = {"type": "integer", "minimum": low, "maximum": high}
        return parameters
