from django.contrib import admin
from django.urls import include, path, register_converter
from drf_spectacular.views import SpectacularSwaggerView

from config.converters import CodeConverter, IdConverter
from config.health import health, ready
from config.schema import SchemaView
from exchange.web.home import home

register_converter(IdConverter, "id")
register_converter(CodeConverter, "code")

urlpatterns = [
    path("", home, name="home"),
    # The language chosen on a page (POST language=en|zh-hans), kept in a cookie.
    path("i18n/", include("django.conf.urls.i18n")),
    path("health/", health, name="health"),
    path("ready/", ready, name="ready"),
    path("admin/", admin.site.urls),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include("exchange.api.urls")),
    path("registry/", include("exchange.web.urls")),
]

handler400 = "config.api.json_400"
handler404 = "config.api.json_404"
handler500 = "config.api.json_500"
