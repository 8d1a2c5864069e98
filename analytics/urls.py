from django.urls import path

from . import views

app_name = "analytics"

urlpatterns = [
    path("", views.CampaignListView.as_view(), name="index"),
    path("campaigns/<int:pk>/", views.CampaignReportView.as_view(), name="campaign"),
    path("lifetime/", views.LifetimeValueView.as_view(), name="lifetime"),
]
