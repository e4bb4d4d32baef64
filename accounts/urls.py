from django.urls import path

from accounts import api

urlpatterns = [
    path("", api.ApiRootApi.as_view(), name="api-root"),
    path("participants", api.ParticipantListApi.as_view(), name="participants"),
    path("participants/<int:pk>", api.ParticipantDetailApi.as_view(), name="participant-detail"),
    path("participants/<int:pk>/suspend", api.ParticipantSuspendApi.as_view(), name="participant-suspend"),
    path("participants/<int:pk>/reactivate", api.ParticipantReactivateApi.as_view(), name="participant-reactivate"),
]
