from django.urls import path

from . import views

app_name = "gateway"

urlpatterns = [
    path("", views.GatewayIndexView.as_view(), name="index"),
    path("accounts/<int:pk>/selfcheck/", views.AccountSelfCheckView.as_view(), name="account-selfcheck"),
]
