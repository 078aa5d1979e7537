from django.contrib.admin.views.decorators import staff_member_required
from django.urls import path

from . import views

app_name = "support"

urlpatterns = [
    path("diagnosis/", staff_member_required(views.diagnosis_view), name="diagnosis"),
    path(
        "identities/<int:pk>/resend/",
        staff_member_required(views.realtime_resend_view),
        name="realtime-resend",
    ),
    path("health/", staff_member_required(views.health_view), name="health"),
]
