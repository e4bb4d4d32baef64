"""Every record and field the admin shows has a name the catalogue translates: a Chinese page says no
English field names (the words are in exchange/vocabulary.py, applied when the app is ready)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import override_settings
from django.utils.functional import Promise


def _shown_models() -> set[type]:
    shown = set()
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label in {"exchange", "accounts"}:
            shown.add(model)
            shown.update(inline.model for inline in model_admin.inlines)
    return shown


def test_every_model_and_field_the_admin_shows_has_a_translatable_name():
    unnamed = []
    for model in _shown_models():
        opts = model._meta
        if not isinstance(opts.verbose_name, Promise) or not isinstance(opts.verbose_name_plural, Promise):
            unnamed.append(opts.model_name)
        for field in opts.get_fields():
            if getattr(field, "auto_created", False):
                continue  # a reverse relation, or the automatic ID Django names itself
            if not isinstance(field.verbose_name, Promise):
                unnamed.append(f"{opts.model_name}.{field.name}")

    assert sorted(unnamed) == []


@pytest.mark.django_db
@override_settings(LANGUAGE_CODE="zh-hans")
def test_the_carryover_rule_page_names_its_fields_in_chinese(admin_client):
    response = admin_client.get("/admin/exchange/carryoverrule/add/", HTTP_ACCEPT_LANGUAGE="zh-CN")
    page = response.content.decode()

    assert response.status_code == 200
    labels = ["增加 结转规则", "基数（吨）", "出售起始日", "出售截止日", "起始年度", "强制执行"]
    labels += ["须按时履约", "生效时间"]
    for label in labels:
        assert label in page
    for english in ["Base tonnes", "Sales from", "First vintage", "Timely compliance required", "Effective from"]:
        assert english not in page


@pytest.mark.django_db
@override_settings(LANGUAGE_CODE="zh-hans")
def test_the_index_names_every_model_in_chinese(admin_client):
    page = admin_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()

    for name in ["配额分配规则", "结转规则", "官方参考价", "参与方事件", "交易规则版本", "质押变更"]:
        assert name in page
    for english in ["Allocation rules", "Carryover rules", "Official prices", "Participant events", "Rulebooks"]:
        assert english not in page
