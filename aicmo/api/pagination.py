from rest_framework import pagination, serializers


class StrictPageSizeMixin:
    """`?page_size=` must be an integer from 1 to `max_page_size` (a 400 otherwise, as the schema says),
    not silently replaced by the default or clamped."""

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        field = serializers.IntegerField(min_value=1, max_value=self.max_page_size)
        try:
            return field.run_validation(raw)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({self.page_size_query_param: exc.detail}) from None

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
            elif parameter["name"] == getattr(self, "page_query_param", None):
                parameter["schema"] = {"type": "integer", "minimum": 1}
        return parameters


class PageNumberPagination(StrictPageSizeMixin, pagination.PageNumberPagination):
    """``?page=`` must be an integer ≥ 1 when given, as the schema says (``page=``, ``page=x`` and DRF's
    undocumented ``page=last`` are a 400, not page 1); a page past the last is DRF's 404 "Invalid page."."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_number(self, request, paginator):
        raw = request.query_params.get(self.page_query_param)
        if raw is None:
            return 1
        if not (raw.isascii() and raw.isdigit() and int(raw) >= 1):
            raise serializers.ValidationError({self.page_query_param: ["A page number: 1, 2, 3, …"]})
        return int(raw)


class EventCursorPagination(StrictPageSizeMixin, pagination.CursorPagination):
    """For append-only streams (audit events, engagement events): stable under concurrent inserts."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
    ordering = "-id"
