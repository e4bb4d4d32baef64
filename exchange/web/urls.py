from django.urls import path

from exchange.web import market, registry

app_name = "registry"

urlpatterns = [
    path("retirements/<id:pk>", registry.certificate, name="certificate"),
    path("pledges/<str:reference>", registry.pledge_certificate, name="pledge-certificate"),
    path("serials", registry.serials, name="serials"),
    path("market/quotes", market.quotes, name="quotes"),
]
