"""The admin site registry and exchange staff work in: models grouped by the work (registry, market,
settlement, pledges, compliance, audit, access), and every list and page made readable the same way.

Each admin registered on the site gets, whoever wrote it:

- money (``*_fen`` fields) shown and entered in yuan with two decimals and thousands separators, rates
  (``*_bp``) as percentages, tonnes with separators; a balance, posting or hold of cash in yuan;
- a search box (text fields and the account, participant and asset it points to) when it declares none;
- a CSV export of the list as filtered and searched (``?_export=csv``, the "Export CSV" button);
- no save buttons on a page where nothing can be changed;
- list columns that fit 1,400 px: names and headings wrap, account numbers, amounts and dates don't.

It lives outside ``exchange.admin`` so that Django can build the site before the admin modules register.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Callable, Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.contrib.admin.utils import label_for_field, lookup_field
from django.core.validators import DecimalValidator
from django.db import models
from django.http import HttpRequest, HttpResponseBase, StreamingHttpResponse
from django.utils import timezone
from django.utils.functional import lazy
from django.utils.html import strip_tags
from django.utils.text import capfirst, slugify
from django.utils.translation import gettext_lazy as _

from core.money import fen_to_str
from exchange.vocabulary import FORM_HELP

# The work, in the order it appears on the index and in the sidebar, and the models of each.
WORK = [
    (
        "registry",
        _("Registry"),
        [
            "accounts.participant",
            "exchange.account",
            "exchange.project",
            "exchange.asset",
            "exchange.issuance",
            "exchange.balance",
            "exchange.serialblock",
            "exchange.pendingtransfer",
            "exchange.trustedaccount",
            "exchange.retirement",
            "exchange.approvalrequest",
            "exchange.hold",
            "exchange.transaction",
            "exchange.posting",
            "exchange.serialmovement",
        ],
    ),
    (
        "market",
        _("Market"),
        [
            "exchange.marketrules",
            "exchange.order",
            "exchange.trade",
            "exchange.dailyprice",
            "exchange.calendar",
            "exchange.calendaryear",
            "exchange.calendarday",
        ],
    ),
    ("settlement", _("Settlement"), ["exchange.settlementbatch"]),
    (
        "pledges",
        _("Pledges"),
        [
            "exchange.pledgeloan",
            "exchange.pledgecollateral",
            "exchange.pledgevaluation",
            "exchange.margincall",
            "exchange.pledgeenforcement",
        ],
    ),
    (
        "compliance",
        _("Compliance"),
        [
            "exchange.complianceyear",
            "exchange.obligation",
            "exchange.verifiedemission",
            "exchange.allocationentry",
            "exchange.surrender",
            "exchange.surrenderitem",
        ],
    ),
    (
        "audit",
        _("Audit"),
        [
            "exchange.auditevent",
            "exchange.checkpoint",
            "exchange.notice",
            "exchange.jobrun",
            "exchange.idempotentrequest",
        ],
    ),
    (
        "access",
        _("Access"),
        [
            "auth.user",
            "auth.group",
            "accounts.membership",
            "accounts.apitoken",
            "axes.accessattempt",
            "axes.accessfailurelog",
            "axes.accesslog",
        ],
    ),
]
# A model the list doesn't name goes by its models module (exchange.models.pledges -> pledges), else to the
# last group, "system" (scheduled tasks and the like). An admin may say ``work = "market"`` itself.
MODULE_WORK = {
    "assets": "registry",
    "ledger": "registry",
    "serials": "registry",
    "holds": "registry",
    "trust": "registry",
    "approvals": "registry",
    "transfers": "registry",
    "trading": "market",
    "markets": "market",
    "calendar": "market",
    "settlement": "settlement",
    "pledges": "pledges",
    "compliance": "compliance",
    "audit": "audit",
    "notices": "audit",
    "events": "audit",
    "webhooks": "audit",
    "jobs": "audit",
    "idempotency": "audit",
}
SYSTEM = ("system", _("System"))

# Integer fields that are tonnes or counts people read with separators (not ids, years or serials).
_PLAIN_INTEGERS = {
    "id",
    "year",
    "seq",
    "number",
    "first",
    "last",
    "first_serial",
    "last_serial",
    "next_serial",
    "version",
    "revision",
    "attempts",
    "first_seq",
    "last_seq",
    "vintage",
    "object_id",
}
# Amount fields of rows that carry an asset: tonnes, or fen when the asset is cash.
_AMOUNTS = {"total", "held", "available", "quantity", "remaining", "balance_after"}


class GreenledgerAdminSite(admin.AdminSite):
    site_header = _("greenledger: carbon registry and exchange")
    site_title = "greenledger"
    index_title = _("Registry and exchange administration")
    site_url = "/"
    # The navigation sidebar would take 300 of a 1,400-px window from every list; the index (grouped by the
    # work) and the breadcrumbs lead from one list to another.
    enable_nav_sidebar = False

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        if app_label is not None:
            return super().get_app_list(request, app_label)
        by_label: dict[str, dict[str, Any]] = {}
        for app in self._build_app_dict(request).values():
            for entry in app["models"]:
                by_label[f"{app['app_label']}.{entry['object_name'].lower()}"] = entry
        groups: list[dict[str, Any]] = []
        placed: set[str] = set()
        order = [*WORK, (*SYSTEM, [])]
        work_of = {label: key for key, _name, labels in WORK for label in labels}
        for model, model_admin in self._registry.items():
            label = model._meta.label_lower
            if label not in work_of:
                module = model.__module__.rsplit(".", 1)[-1]
                work_of[label] = getattr(model_admin, "work", None) or MODULE_WORK.get(module, SYSTEM[0])
        for key, name, labels in order:
            listed = [label for label in labels if label in by_label]
            others = sorted(
                (label for label, work in work_of.items() if work == key and label not in labels and label in by_label),
                key=lambda label: str(by_label[label]["name"]),
            )
            models_of = [by_label[label] for label in [*listed, *others] if label not in placed]
            placed.update(listed, others)
            if models_of:
                groups.append(
                    {
                        "name": name,
                        "app_label": key,
                        "app_url": f"#{key}",
                        "has_module_perms": True,
                        "models": models_of,
                    }
                )
        return groups

    def register(self, model_or_iterable: Any, admin_class: Any = None, **options: Any) -> None:
        super().register(model_or_iterable, admin_class, **options)
        for model in model_or_iterable if isinstance(model_or_iterable, (list, tuple)) else [model_or_iterable]:
            if model in self._registry:
                adapt(self._registry[model])


class GreenledgerAdminConfig(AdminConfig):
    default_site = "exchange.admin_site.GreenledgerAdminSite"


# --- how values read ---------------------------------------------------------------------------------


def yuan(fen: int | None) -> str:
    """Fen as yuan with two decimals and thousands separators: 4995528330 -> 49,955,283.30."""
    if fen is None:
        return "—"
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100:,}.{fen % 100:02d}"


def percent(bp: int | None) -> str:
    """Basis points as a percentage: 5406 -> 54.06%."""
    if bp is None:
        return "—"
    return f"{Decimal(bp) / 100:.2f}%"


def tonnes(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _field(model: type[models.Model], name: str) -> models.Field | None:
    try:
        field = model._meta.get_field(name)
    except Exception:
        return None
    return field if isinstance(field, models.Field) else None


def _has_asset(model: type[models.Model]) -> bool:
    return isinstance(_field(model, "asset"), models.ForeignKey)


def _column(model: type[models.Model], name: str) -> Callable[[Any], str] | None:
    """A display function for a list column or a read-only field that people should read in yuan, percent or
    separated tonnes; None to leave it as it is."""
    field = _field(model, name)
    if field is None and name in _AMOUNTS and _has_asset(model) and isinstance(getattr(model, name, None), property):
        # A derived amount (a balance's available): tonnes, or yuan for cash.
        def derived(obj: Any) -> str:
            value = getattr(obj, name)
            return yuan(value) if value is not None and obj.asset.is_cash else tonnes(value)

        derived.__name__ = f"{name}_shown"
        return admin.display(description=_(name))(derived)
    if field is None or not isinstance(field, models.IntegerField) or field.choices:
        return None
    if name.endswith("_fen"):
        shown: Callable[[Any], str] = lambda obj: yuan(getattr(obj, name))  # noqa: E731
    elif name.endswith("_bp"):
        shown = lambda obj: percent(getattr(obj, name))  # noqa: E731
    elif name in _AMOUNTS and _has_asset(model):

        def shown(obj: Any) -> str:
            value = getattr(obj, name)
            return yuan(value) if value is not None and obj.asset.is_cash else tonnes(value)

    elif name not in _PLAIN_INTEGERS and not name.endswith("_id"):
        shown = lambda obj: tonnes(getattr(obj, name))  # noqa: E731
    else:
        return None
    # The field's name as the vocabulary gives it, read when the page renders (the vocabulary is applied
    # after the admin registers its models).
    label = lazy(lambda: str(getattr(model._meta.get_field(name), "verbose_name", name)), str)()
    display: Callable[[Any], str] = admin.display(description=label, ordering=name)(shown)
    display.__name__ = f"{name}_shown"
    return display


def _shown(model_admin: admin.ModelAdmin, name: Any) -> Any:
    """The name of the model admin's display attribute for a field (made once), or the name unchanged."""
    if not isinstance(name, str):
        return name
    attr = f"{name}_shown"
    if hasattr(model_admin, attr):
        return attr
    display = _column(model_admin.model, name)
    if display is None:
        return name
    setattr(model_admin, attr, display)
    return attr


def _checked(field: forms.DecimalField, amount: Decimal | None) -> None:
    """Refuse a figure finer than the field keeps (72.505 yuan, 3.855%: it would be cut, not kept) or longer
    (it would not fit the column)."""
    if amount is None:
        return
    if amount != amount.quantize(Decimal("0.01")):
        raise forms.ValidationError(field.error_messages["max_decimal_places"], code="max_decimal_places")
    DecimalValidator(field.max_digits, field.decimal_places)(amount.normalize())


class YuanField(forms.DecimalField):
    """Money entered in yuan (two places) and kept in fen: ``72.50`` gives 7250. More than two decimals is
    refused, never rounded; ``min_fen`` is the least it takes (none: any amount)."""

    default_error_messages = {
        "max_decimal_places": _("Enter yuan with at most two decimals (fen), e.g. 72.50."),
        "min_fen": _("Enter at least %(least)s yuan."),
    }

    def __init__(self, *, min_fen: int | None = None, **kwargs: Any) -> None:
        kwargs.pop("max_value", None)
        kwargs.pop("min_value", None)
        self.min_fen = min_fen
        super().__init__(max_digits=17, decimal_places=2, **kwargs)

    def prepare_value(self, value: Any) -> Any:
        return fen_to_str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    def to_python(self, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            value = value.replace(",", "").replace("\u00a5", "").strip()  # 4,800.00 and ¥4800 as people write them
        amount = super().to_python(value)
        _checked(self, amount)
        return None if amount is None else int(amount.scaleb(2))

    def validate(self, value: Any) -> None:
        if value in self.empty_values and self.required:
            super().validate(value)
        if self.min_fen is not None and value not in self.empty_values and value < self.min_fen:
            raise forms.ValidationError(
                self.error_messages["min_fen"], code="min_fen", params={"least": fen_to_str(self.min_fen)}
            )

    def run_validators(self, value: Any) -> None:
        return None


class PercentField(forms.DecimalField):
    """A rate entered as a percentage (two places) and kept in basis points: ``3.85`` gives 385. More than two
    decimals is refused, never rounded."""

    default_error_messages = {
        "max_decimal_places": _("Enter a percentage with at most two decimals, e.g. 3.85."),
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.pop("max_value", None)
        kwargs.pop("min_value", None)
        super().__init__(max_digits=7, decimal_places=2, **kwargs)

    def prepare_value(self, value: Any) -> Any:
        return f"{Decimal(value) / 100:.2f}" if isinstance(value, int) and not isinstance(value, bool) else value

    def to_python(self, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            value = value.replace("%", "").strip()
        rate = super().to_python(value)
        _checked(self, rate)
        return None if rate is None else int(rate.scaleb(2))

    def validate(self, value: Any) -> None:
        if value in self.empty_values and self.required:
            super().validate(value)

    def run_validators(self, value: Any) -> None:
        return None


# --- adapting each registered admin --------------------------------------------------------------------


def adapt(model_admin: admin.ModelAdmin) -> None:
    model = model_admin.model
    # Set on the instance: the class (another app's, maybe) stays as its author wrote it.
    model_admin.list_display = [_shown(model_admin, name) for name in model_admin.list_display]
    model_admin.unbroken_columns = unbroken_columns(model, model_admin.list_display)  # type: ignore[attr-defined]
    if not model_admin.search_fields:
        model_admin.search_fields = default_search_fields(model)  # type: ignore[misc]
    if model_admin.change_list_template is None:
        model_admin.change_list_template = "admin/greenledger_change_list.html"  # type: ignore[misc]
    _wrap(model_admin, "get_inline_instances", _inlines_shown)
    model_admin.list_per_page = min(model_admin.list_per_page, 50)  # type: ignore[misc]
    _wrap(model_admin, "get_readonly_fields", _readonly_shown)
    _wrap(model_admin, "get_fieldsets", _fieldsets_shown)
    _wrap(model_admin, "formfield_for_dbfield", _money_inputs)
    _wrap(model_admin, "changelist_view", _csv_export)
    _wrap(model_admin, "render_change_form", _no_save_when_nothing_changes)


def _wrap(model_admin: admin.ModelAdmin, name: str, wrapper: Callable[..., Any]) -> None:
    original = getattr(model_admin, name)
    setattr(model_admin, name, functools.partial(wrapper, model_admin, original))


def _inlines_shown(
    model_admin: admin.ModelAdmin, original: Callable[..., Any], request: HttpRequest, obj: Any = None
) -> list[Any]:
    inlines = original(request, obj)
    for inline in inlines:
        _wrap(inline, "get_readonly_fields", _readonly_shown)
        _wrap(inline, "get_fieldsets", _fieldsets_shown)
    return inlines


# Columns that hold an identifier (an account number, an asset's or a project's code, a serial, a registration
# reference): by their name, or as a foreign key to a model that reads as its code.
_CODE_WORDS = ("account", "number", "code", "serial", "registration_reference", "asset", "project", "first", "last")
_CODED_MODELS = {"exchange.account", "exchange.asset", "exchange.project", "exchange.pledgeloan"}


def unbroken_columns(model: type[models.Model], list_display: Any) -> list[str]:
    """The list columns kept on one line (the list's template says so in CSS): account numbers, amounts,
    dates. Every other column (names, reasons, headings) wraps, so that a list fits 1,400 px."""
    unbroken = []
    for name in list_display:
        if not isinstance(name, str):
            continue
        field = _field(model, name)
        coded = isinstance(field, models.ForeignKey) and getattr(field.related_model, "_meta", None) is not None
        if (
            name.endswith("_shown")
            or any(word in name for word in _CODE_WORDS)
            or isinstance(field, (models.DateField, models.IntegerField, models.DecimalField))
            or (coded and field.related_model._meta.label_lower in _CODED_MODELS)  # type: ignore[union-attr]
        ):
            unbroken.append(name)
    return unbroken


def default_search_fields(model: type[models.Model]) -> list[str]:
    found: list[str] = []
    for field in model._meta.get_fields():
        if not isinstance(field, models.Field) or field.name in {"digest", "request_hash", "hash", "body", "payload"}:
            continue
        if isinstance(field, (models.CharField, models.TextField)) and not field.choices:
            found.append(field.name)
        elif isinstance(field, models.ForeignKey):
            target = getattr(field.related_model, "_meta", None)
            target = target.label_lower if target is not None else ""
            lookup = {
                "exchange.account": "number",
                "accounts.participant": "name",
                "exchange.asset": "code",
                "exchange.project": "code",
                "auth.user": "username",
            }.get(target)
            if lookup:
                found.append(f"{field.name}__{lookup}")
    return found[:6] or [f"={model._meta.pk.name}"]


def _names_read_only(model_admin: admin.ModelAdmin, request: HttpRequest, obj: Any) -> set[str]:
    if obj is not None and not model_admin.has_change_permission(request, obj):
        return {"*"}
    return set(model_admin.get_readonly_fields(request, obj))


def _readonly_shown(
    model_admin: admin.ModelAdmin, original: Callable[..., Any], request: HttpRequest, obj: Any = None
) -> list[Any]:
    names = list(original(request, obj))
    plain = [_plain(model_admin, n) for n in names if n in _closed_links(model_admin, request, names)]
    return [*names, *(_shown(model_admin, n) for n in names if _shown(model_admin, n) != n), *plain]


def _foreign_keys(model: type[models.Model]) -> list[str]:
    return [f.name for f in model._meta.get_fields() if isinstance(f, models.ForeignKey)]


def _closed_links(model_admin: admin.ModelAdmin, request: HttpRequest, names: Any) -> set[str]:
    """The foreign keys among ``names`` whose objects the viewer can't open in the admin: Django links a read-only
    foreign key to its object's page whatever the viewer may open (a user, for every staff user but a superuser,
    is a 403 page), so these are shown as text (``_plain``)."""
    closed = set()
    for name in names:
        field = _field(model_admin.model, name) if isinstance(name, str) else None
        if not isinstance(field, models.ForeignKey):
            continue
        target = model_admin.admin_site._registry.get(field.related_model)  # type: ignore[arg-type]
        if target is None or not target.has_view_permission(request):
            closed.add(name)
    return closed


def _plain(model_admin: admin.ModelAdmin, name: str) -> str:
    """The name of the model admin's display attribute showing a foreign key's object as text (made once)."""
    attr = f"{name}_plain"
    if not hasattr(model_admin, attr):
        model = model_admin.model

        def plain(obj: Any) -> str | None:
            value = getattr(obj, name)
            return None if value is None else str(value)

        label = lazy(lambda: str(model._meta.get_field(name).verbose_name), str)()
        setattr(model_admin, attr, admin.display(description=label)(plain))
    return attr


def _fieldsets_shown(
    model_admin: admin.ModelAdmin, original: Callable[..., Any], request: HttpRequest, obj: Any = None
) -> list[Any]:
    fieldsets = original(request, obj)
    read_only = _names_read_only(model_admin, request, obj)
    closed = _closed_links(model_admin, request, _foreign_keys(model_admin.model))

    def swap(name: Any) -> Any:
        if isinstance(name, (list, tuple)):
            return type(name)(swap(n) for n in name)
        if isinstance(name, str) and ("*" in read_only or name in read_only):
            return _plain(model_admin, name) if name in closed else _shown(model_admin, name)
        return name

    return [
        (title, {**options, "fields": [swap(n) for n in options.get("fields", ())]}) for title, options in fieldsets
    ]


def _money_inputs(
    model_admin: admin.ModelAdmin, original: Callable[..., Any], db_field: Any, request: HttpRequest, **kwargs: Any
) -> Any:
    return money_input(db_field, original(db_field, request, **kwargs))


def money_input(db_field: Any, formfield: Any) -> Any:
    """The form field a person types a model field into: money (``*_fen``) in yuan, a rate (``*_bp``) as a
    percentage, with help that speaks of the unit typed (``exchange.vocabulary.FORM_HELP``), not the one kept;
    any other field as it is."""
    if formfield is None or not isinstance(db_field, models.IntegerField) or db_field.choices:
        return formfield
    if not db_field.name.endswith(("_fen", "_bp")):
        return formfield
    common = {
        "required": formfield.required,
        "label": formfield.label,
        "help_text": FORM_HELP.get((db_field.model._meta.model_name or "", db_field.name), formfield.help_text),
        "initial": formfield.initial,
    }
    return YuanField(**common) if db_field.name.endswith("_fen") else PercentField(**common)


def money_formfield(db_field: Any, **kwargs: Any) -> Any:
    """A ``ModelForm``'s ``formfield_callback`` for a form the admin does not build itself (a page of its own):
    money and rates entered as on every admin form. Such a form is made at import, before the vocabulary names
    the fields, so each label is read when the page renders."""
    kwargs.setdefault("label", lazy(lambda: capfirst(db_field.verbose_name), str)())
    return money_input(db_field, db_field.formfield(**kwargs))


def _no_save_when_nothing_changes(
    model_admin: admin.ModelAdmin,
    original: Callable[..., Any],
    request: HttpRequest,
    context: dict[str, Any],
    *args: Any,
    **kwargs: Any,
) -> Any:
    adminform = context.get("adminform")
    if adminform is not None and not adminform.form.fields and not context.get("add"):
        context.update(
            show_save=False, show_save_and_continue=False, show_save_and_add_another=False, show_save_as_new=False
        )
    return original(request, context, *args, **kwargs)


def _csv_value(value: Any) -> str:
    if isinstance(value, datetime):
        return (
            timezone.localtime(value).isoformat(timespec="seconds") if timezone.is_aware(value) else value.isoformat()
        )
    if isinstance(value, date):
        return value.isoformat()
    if value is None:
        return ""
    return strip_tags(str(value))


def _csv_export(
    model_admin: admin.ModelAdmin, original: Callable[..., Any], request: HttpRequest, extra_context: Any = None
) -> HttpResponseBase:
    if request.GET.get("_export") != "csv":
        return original(request, extra_context)
    if not model_admin.has_view_or_change_permission(request):
        return original(request, extra_context)
    query = request.GET.copy()
    del query["_export"]
    request.GET = query  # type: ignore[assignment]
    changelist = model_admin.get_changelist_instance(request)
    columns = [n for n in changelist.list_display if n != "action_checkbox"]
    headers = [str(label_for_field(n, model_admin.model, model_admin)) for n in columns]
    rows = changelist.get_queryset(request)

    def lines() -> Iterator[str]:
        class Echo:
            def write(self, text: str) -> str:
                return text

        writer = csv.writer(Echo())
        yield "\ufeff"  # Excel opens UTF-8 (Chinese names) correctly with the byte-order mark
        yield writer.writerow(headers)
        for obj in rows.iterator(chunk_size=500):
            values = []
            for name in columns:
                try:
                    _f, _attr, value = lookup_field(name, obj, model_admin)
                except Exception:
                    value = ""
                values.append(_csv_value(value))
            yield writer.writerow(values)

    stamp = timezone.localtime().strftime("%Y-%m-%d")
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="{slugify(model_admin.model._meta.model_name)}-{stamp}.csv"'
    )
    return response
