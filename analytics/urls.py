from django.urls import path

from . import insight_views, views

app_name = "analytics"

urlpatterns = [
    path("", views.CampaignListView.as_view(), name="index"),
    path("campaigns/<int:pk>/", views.CampaignReportView.as_view(), name="campaign"),
    path("trends/", insight_views.TrendsView.as_view(), name="trends"),
    path("cohorts/", insight_views.CohortsView.as_view(), name="cohorts"),
    path("scores/", insight_views.ScoresView.as_view(), name="scores"),
    path("contacts/<int:pk>/", insight_views.Contact360View.as_view(), name="contact"),
    path("contacts/<int:pk>/scores/", insight_views.ContactScoresView.as_view(), name="contact-scores"),
    path("assets/", insight_views.AssetPerformanceView.as_view(), name="assets"),
    path("lifetime/", views.LifetimeValueView.as_view(), name="lifetime"),
]
