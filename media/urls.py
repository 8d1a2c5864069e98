from django.urls import path

from . import views

app_name = "media"

urlpatterns = [
    path("", views.IndexView.as_view(), name="index"),
    path("upload/", views.UploadView.as_view(), name="upload"),
    path("insights/", views.InsightsView.as_view(), name="insights"),
    path("suggestions/refresh/", views.SuggestionsRefreshView.as_view(), name="suggestions-refresh"),
    path("libraries/", views.LibraryListView.as_view(), name="libraries"),
    path("libraries/<int:pk>/", views.LibraryEditView.as_view(), name="library"),
    path("libraries/<int:pk>/archive/", views.LibraryArchiveView.as_view(), name="library-archive"),
    path("assets/<int:pk>/", views.AssetDetailView.as_view(), name="asset"),
    path("assets/<int:pk>/delete/", views.AssetDeleteView.as_view(), name="asset-delete"),
    path("assets/<int:pk>/file/", views.AssetFileView.as_view(), name="asset-file"),
    path("assets/<int:pk>/renditions/<slug:spec>/", views.RenditionFileView.as_view(), name="rendition-file"),
    path("assets/<int:pk>/<slug:action>/", views.AssetActionView.as_view(), name="asset-action"),
    path(
        "suggestions/<int:pk>/<slug:action>/", views.SuggestionActionView.as_view(), name="suggestion-action"
    ),
]
