from django.urls import path

from accounts import api

# Path converters "id" and "code" are registered in config/urls.py.

urlpatterns = [
    path("", api.ApiRootApi.as_view(), name="api-root"),
    path("participants", api.ParticipantListApi.as_view(), name="participants"),
    path("participants/<id:pk>", api.ParticipantDetailApi.as_view(), name="participant-detail"),
    path("participants/<id:pk>/suspend", api.ParticipantSuspendApi.as_view(), name="participant-suspend"),
    path("participants/<id:pk>/reactivate", api.ParticipantReactivateApi.as_view(), name="participant-reactivate"),
    path("tokens/<code:prefix>/revoke", api.ApiTokenRevokeApi.as_view(), name="token-revoke"),
]
