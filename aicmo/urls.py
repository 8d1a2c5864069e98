from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from aicmo import invitation_views, ops, settings_views, twofactor_views, views
from aicmo.api import core as core_api
from aicmo.navigation import installed_api_apps, installed_areas
from aicmo.password_reset import QueuedPasswordResetForm

router = DefaultRouter()
router.register("jobs", core_api.JobViewSet, basename="api-job")
router.register("audit-events", core_api.AuditEventViewSet, basename="api-audit-event")
router.register("api-keys", core_api.ApiKeyViewSet, basename="api-api-key")
router.register("members", core_api.MembershipViewSet, basename="api-member")
router.register("invitations", core_api.InvitationViewSet, basename="api-invitation")

api_patterns = [
    path("workspaces/", core_api.MyWorkspacesView.as_view(), name="api-my-workspaces"),
    *router.urls,
    *[path(f"{app}/", include(f"{app}.api")) for app in installed_api_apps()],
]

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("ops/", ops.OpsView.as_view(), name="ops"),
    path("ops/jobs/<int:pk>/retry/", ops.OpsJobRetryView.as_view(), name="ops-job-retry"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("two-factor/", twofactor_views.TwoFactorView.as_view(), name="two-factor"),
    path("two-factor/verify/", twofactor_views.TwoFactorVerifyView.as_view(), name="two-factor-verify"),
    path("password/change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("password/change/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path(
        "password/reset/",
        auth_views.PasswordResetView.as_view(form_class=QueuedPasswordResetForm),
        name="password_reset",
    ),
    path("password/reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"
    ),
    path("workspace/switch/", views.WorkspaceSwitchView.as_view(), name="workspace-switch"),
    path("jobs/", views.JobListView.as_view(), name="job-list"),
    path("jobs/<int:pk>/", views.JobDetailView.as_view(), name="job-detail"),
    path("jobs/<int:pk>/progress/", views.JobProgressView.as_view(), name="job-progress"),
    path("jobs/<int:pk>/cancel/", views.JobCancelView.as_view(), name="job-cancel"),
    path("jobs/<int:pk>/download/", views.JobDownloadView.as_view(), name="job-download"),
    path("audit/", views.AuditLogView.as_view(), name="audit-log"),
    path("preferences/", settings_views.PreferencesView.as_view(), name="preferences"),
    path("settings/", settings_views.WorkspaceSettingsView.as_view(), name="workspace-settings"),
    path("settings/members/<int:pk>/", settings_views.MemberRoleView.as_view(), name="workspace-member"),
    path(
        "settings/api-keys/<int:pk>/revoke/",
        settings_views.ApiKeyRevokeView.as_view(),
        name="workspace-key-revoke",
    ),
    path(
        "settings/invitations/<int:pk>/<str:action>/",
        settings_views.InvitationActionView.as_view(),
        name="workspace-invitation",
    ),
    path(
        "invitations/<str:token>/", invitation_views.InvitationAcceptView.as_view(), name="invitation-accept"
    ),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_patterns)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up code as a script file: no inline script for the CSP.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    *[path(f"{app}/", include(f"{app}.urls")) for app, _ in installed_areas()],
]

handler404 = views.page_not_found
handler500 = "aicmo.dblocks.server_error"
