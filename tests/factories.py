"""Typed factory_boy factories for the core tables. App factories live in tests/<app>/factories.py."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from aicmo.models import AuditEvent, Job, Membership, Role, Workspace


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Workspace {n}")
    slug = factory.Sequence(lambda n: f"workspace-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.django.Password("pass-word-123")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    workspace = factory.SubFactory(WorkspaceFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.MARKETER


class JobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Job

    workspace = factory.SubFactory(WorkspaceFactory)
    kind = "test"
    total = 10


class AuditEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AuditEvent

    workspace = factory.SubFactory(WorkspaceFactory)
    verb = "test.event"
    actor_label = "system"
