"""One FilterSet for contact lists: the API, admin export and dashboard all filter the same way."""

from __future__ import annotations

import unicodedata

import django_filters
from django.db.models import Q

from aicmo.api.filters import MAX_ID, FilterSet, IdFilter, UtcIsoDateTimeFilter  # noqa: F401 (MAX_ID: crm.api, crm.views)

from .models import Contact, Lifecycle, Tier, Verdict
from .normalize import strip_invisible


class ContactFilter(FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    lifecycle = django_filters.MultipleChoiceFilter(choices=Lifecycle.choices)
    verification = django_filters.ChoiceFilter(choices=Verdict.choices, empty_label="Any verification")
    engagement_tier = django_filters.ChoiceFilter(choices=Tier.choices, empty_label="Any tier")
    tag = django_filters.CharFilter(method="by_tag", label="Tag")
    list = IdFilter(field_name="list_memberships__contact_list", label="List id")
    company = django_filters.CharFilter(
        field_name="company__domain", lookup_expr="iexact", label="Company domain"
    )
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    min_score = django_filters.NumberFilter(field_name="engagement_score", lookup_expr="gte")

    class Meta:
        model = Contact
        fields = ["q", "lifecycle", "verification", "engagement_tier", "tag", "list", "company", "source"]

    def search(self, queryset, name, value):
        value = unicodedata.normalize("NFC", strip_invisible(value))
        if not value:
            return queryset
        return queryset.filter(
            Q(
                email__contains=value.lower()
            )  # stored NFC and lowercased (normalize_email): any database, any script
            | Q(first_name__icontains=value)
            | Q(last_name__icontains=value)
            | Q(company__name__icontains=value)
        )

    def by_tag(self, queryset, name, value):
        through = Contact.tags.through
        return queryset.filter(pk__in=through.objects.filter(tag__name=value).values("contact_id"))
