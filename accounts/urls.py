from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/", views.account_view, name="account"),
    path("account/devices/<str:public_id>/switch/", views.device_switch_view, name="account-device-switch"),
    path("account/connections/ifttt/disconnect/", views.ifttt_disconnect_view, name="account-ifttt-disconnect"),
]
