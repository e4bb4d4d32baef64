"""The public registry pages: a retirement's certificate and the serial lookup. No login; thin views over
``exchange.selectors.registry``, throttled per address by ``config.middleware.AnonymousThrottleMiddleware``."""

from __future__ import annotations

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from core.limits import MAX_QUANTITY
from exchange.models import Asset
from exchange.selectors.registry import pledge_certificate as registry_pledge_certificate
from exchange.selectors.registry import public_serial, retirement_certificate, serialised_assets


def not_found(request: HttpRequest, what: str) -> HttpResponse:
    return render(request, "registry/not_found.html", {"what": what}, status=404)


@require_safe
def certificate(request: HttpRequest, pk: int) -> HttpResponse:
    found = retirement_certificate(pk)
    if found is None:
        return not_found(request, f"There is no retirement number {pk}.")
    return render(request, "registry/certificate.html", {"c": found, "r": found.retirement})


@require_safe
def pledge_certificate(request: HttpRequest, reference: str) -> HttpResponse:
    found = registry_pledge_certificate(reference)
    if found is None:
        return not_found(request, f"There is no pledge registration number {reference}.")
    return render(request, "registry/pledge_certificate.html", {"c": found, "p": found.loan})


class SerialForm(forms.Form):
    asset = forms.ChoiceField(choices=[])
    serial = forms.IntegerField(min_value=1, max_value=MAX_QUANTITY * 1000)

    def __init__(self, *args: object, assets: list[Asset], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["asset"].choices = [(a.code, f"{a.code} — {a.name}") for a in assets]  # type: ignore[attr-defined]


@require_safe
def serials(request: HttpRequest) -> HttpResponse:
    assets = serialised_assets()
    asked = "asset" in request.GET or "serial" in request.GET
    form = SerialForm(request.GET if asked else None, assets=assets)
    result = None
    if asked and form.is_valid():
        asset = next(a for a in assets if a.code == form.cleaned_data["asset"])
        result = public_serial(asset, form.cleaned_data["serial"])
        if result.state is None:
            response = render(
                request, "registry/serials.html", {"form": form, "result": None, "unissued": result}, status=404
            )
            return response
    status = 400 if asked and not form.is_valid() else 200
    return render(request, "registry/serials.html", {"form": form, "result": result}, status=status)
