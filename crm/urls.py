from django.urls import path

from . import views

app_name = "crm"

urlpatterns = [
    path("", views.ContactListView.as_view(), name="index"),
    path("export.csv", views.ContactExportView.as_view(), name="export"),
    path("new/", views.ContactFormView.as_view(), name="contact-new"),
    path("contacts/<int:pk>/", views.ContactDetailView.as_view(), name="contact"),
    path("contacts/<int:pk>/edit/", views.ContactFormView.as_view(), name="contact-edit"),
    path("contacts/<int:pk>/delete/", views.ContactDeleteView.as_view(), name="contact-delete"),
    path("contacts/<int:pk>/merge/", views.ContactMergeView.as_view(), name="contact-merge"),
    path("contacts/<int:pk>/subscription/", views.ContactSubscriptionView.as_view(), name="subscription"),
    path("companies/", views.CompanyIndexView.as_view(), name="companies"),
    path("companies/<int:pk>/", views.CompanyDetailView.as_view(), name="company"),
    path("tags/", views.TagIndexView.as_view(), name="tags"),
    path("tags/<int:pk>/", views.TagDetailView.as_view(), name="tag"),
    path("segments/", views.SegmentListView.as_view(), name="segments"),
    path("segments/new/", views.SegmentBuilderView.as_view(), name="segment-new"),
    path("segments/<int:pk>/", views.SegmentBuilderView.as_view(), name="segment"),
    path("segments/<int:pk>/manage/", views.SegmentManageView.as_view(), name="segment-manage"),
    path("segments/count/", views.SegmentCountView.as_view(), name="segment-count"),
    path("lists/", views.ListIndexView.as_view(), name="lists"),
    path("fields/", views.CustomFieldIndexView.as_view(), name="fields"),
    path("fields/<int:pk>/", views.CustomFieldEditView.as_view(), name="field"),
    path("lists/<int:pk>/", views.ListManageView.as_view(), name="list"),
    path("lists/members/", views.ListMembersView.as_view(), name="list-members"),
    path("runs/", views.RunListView.as_view(), name="runs"),
    path("runs/start/", views.RunStartView.as_view(), name="run-start"),
    path("runs/<int:pk>/", views.RunDetailView.as_view(), name="run"),
    path("imports/", views.ImportListView.as_view(), name="imports"),
    path("imports/<int:pk>/", views.ImportDetailView.as_view(), name="import"),
    path("imports/<int:pk>/result/", views.ImportResultView.as_view(), name="import-result"),
    path("imports/<int:pk>/errors.csv", views.ImportErrorsCsvView.as_view(), name="import-errors"),
]
