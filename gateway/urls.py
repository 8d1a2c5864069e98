from django.urls import path

from . import views

app_name = "gateway"

urlpatterns = [
    path("", views.GatewayIndexView.as_view(), name="index"),
    path("accounts/add/", views.AccountAddView.as_view(), name="account-add"),
    path("accounts/<int:pk>/", views.AccountEditView.as_view(), name="account-edit"),
    path("accounts/<int:pk>/delete/", views.AccountDeleteView.as_view(), name="account-delete"),
    path("accounts/<int:pk>/selfcheck/", views.AccountSelfCheckView.as_view(), name="account-selfcheck"),
]
