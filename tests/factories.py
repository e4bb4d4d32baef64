"""Factories for tests. Ledger state is made through the services (see ``tests.ledger``), never by
writing balances or blocks directly."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from accounts.models import Membership, Participant, ParticipantKind, Role
from accounts.validators import make_uscc
from exchange.models import Account, AccountKind


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.cn")
    password = factory.django.Password("correct horse battery staple")


class ParticipantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Participant

    name = factory.Sequence(lambda n: f"Participant {n}")
    kind = ParticipantKind.COMPLIANCE_ENTITY
    uscc = factory.Sequence(lambda n: make_uscc(f"91110000{n:09d}"))
    email = factory.Sequence(lambda n: f"desk{n}@example.cn")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    participant = factory.SubFactory(ParticipantFactory)
    role = Role.ADMIN


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    number = factory.Sequence(lambda n: f"CN-900-{n:06d}")
    kind = AccountKind.HOLDING
    participant = factory.SubFactory(ParticipantFactory)
    name = factory.LazyAttribute(lambda a: f"{a.participant.name} account")
