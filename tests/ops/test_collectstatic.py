"""Production's `collectstatic` (whitenoise's compressed manifest storage, as the Dockerfile and the Debian
guide run it) succeeds over every app's static files: a CSS `url()` or a JS `sourceMappingURL` naming a
file that is not there fails the build, so it must fail here first."""

from __future__ import annotations

from django.core.management import call_command


def test_collectstatic_with_the_production_storage(settings, tmp_path):
    settings.STATIC_ROOT = str(tmp_path / "static")
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    call_command("collectstatic", "--noinput", verbosity=0)
    manifest = (tmp_path / "static" / "staticfiles.json").read_text()
    assert "analytics/vendor/chart.umd.min.js" in manifest
