from django.urls import path

from . import views

app_name = "crm"

urlpatterns = [
    path("", views.ContactListView.as_view(), name="index"),
    path("export.csv", views.ContactExportView.as_view(), name="export"),
    path("contacts/<int:pk>/", views.ContactDetailView.as_view(), name="contact"),
    path("contacts/<int:pk>/subscription/", views.ContactSubscriptionView.as_view(), name="subscription"),
    path("segments/", views.SegmentListView.as_view(), name="segments"),
    path("segments/new/", views.SegmentBuilderView.as_view(), name="segment-new"),
    path("segments/<int:pk>/", views.SegmentBuilderView.as_view(), name="segment"),
    path("segments/count/", views.SegmentCountView.as_view(), name="segment-count"),
    path("lists/", views.ListIndexView.as_view(), name="lists"),
    path("lists/members/", views.ListMembersView.as_view(), name="list-members"),
    path("runs/", views.RunListView.as_view(), name="runs"),
    path("runs/start/", views.RunStartView.as_view(), name="run-start"),
    path("runs/<int:pk>/", views.RunDetailView.as_view(), name="run"),
    path("imports/", views.ImportListView.as_view(), name="imports"),
    path("imports/<int:pk>/", views.ImportDetailView.as_view(), name="import"),
    path("imports/<int:pk>/result/", views.ImportResultView.as_view(), name="import-result"),
    path("imports/<int:pk>/errors.csv", views.ImportErrorsCsvView.as_view(), name="import-errors"),
]
