from django.urls import path

from . import views

app_name = "publishing"

urlpatterns = [
    path("", views.CampaignListView.as_view(), name="index"),
    path("campaigns/new/", views.CampaignBuilderView.as_view(), name="campaign-new"),
    path("campaigns/estimate/", views.AudienceEstimateView.as_view(), name="audience-estimate"),
    path("campaigns/<int:pk>/", views.CampaignDetailView.as_view(), name="campaign"),
    path("campaigns/<int:pk>/edit/", views.CampaignBuilderView.as_view(), name="campaign-edit"),
    path("campaigns/<int:pk>/schedule/", views.CampaignScheduleView.as_view(), name="campaign-schedule"),
    path("webhooks/", views.WebhookListView.as_view(), name="webhooks"),
    path("webhooks/new/", views.WebhookCreateView.as_view(), name="webhook-new"),
    path("webhooks/<int:pk>/", views.WebhookDetailView.as_view(), name="webhook"),
    path("webhooks/<int:pk>/delete/", views.WebhookDeleteView.as_view(), name="webhook-delete"),
    path("webhooks/<int:pk>/<slug:action>/", views.WebhookActionView.as_view(), name="webhook-action"),
    path(
        "webhooks/deliveries/<int:pk>/retry/",
        views.WebhookDeliveryRetryView.as_view(),
        name="webhook-delivery-retry",
    ),
    path("demo-outbox/", views.DemoOutboxView.as_view(), name="demo-outbox"),
    path("demo-outbox/<str:name>/", views.DemoOutboxView.as_view(), name="demo-outbox-message"),
    path("contents/new/", views.ContentCreateView.as_view(), name="content-new"),
    path("contents/<int:pk>/", views.ContentDetailView.as_view(), name="content"),
    path("contents/<int:pk>/edit/", views.EmailVersionEditView.as_view(), name="content-edit"),
    path("contents/<int:pk>/preview/", views.ContentPreviewView.as_view(), name="content-preview"),
    path("contents/<int:pk>/send-test/", views.ContentSendTestView.as_view(), name="content-send-test"),
    path("campaigns/<int:pk>/approve/", views.CampaignApproveView.as_view(), name="campaign-approve"),
    path("campaigns/<int:pk>/counts/", views.CampaignCountsView.as_view(), name="campaign-counts"),
    path("campaigns/<int:pk>/report/", views.CampaignReportView.as_view(), name="campaign-report"),
    path("campaigns/<int:pk>/<slug:action>/", views.CampaignActionView.as_view(), name="campaign-action"),
    # Public endpoints reached from sent mail: signed tokens, no login, no cookies.
    path("t/o/<str:token>/", views.open_pixel, name="track-open"),
    path("t/c/<str:token>/", views.click_redirect, name="track-click"),
    path("i/<str:token>/", views.image, name="image"),
    path("u/<str:token>/", views.UnsubscribeView.as_view(), name="unsubscribe"),
    path("c/<str:token>/", views.conversion, name="conversion"),
    # Provider webhooks: the random key names the workspace's hook, its secret verifies the request.
    path("hooks/<slug:provider>/<str:key>/", views.inbound_webhook, name="inbound-webhook"),
]
