"""User files on an S3-compatible object store (AICMO_STORAGE=s3): uploads, duplicates and renditions go
through django-storages to a real S3-speaking server on loopback (moto's server), and are served back."""

from __future__ import annotations

import hashlib

import boto3
import pytest
from moto.server import ThreadedMotoServer

from aicmo.settings import s3_storage_options
from tests.media.conftest import make_image
from tests.media.test_api import post_file

BUCKET = "aicmo-media"


@pytest.fixture(scope="module")
def s3_server():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_storage(s3_server, settings, monkeypatch):
    creds = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_S3_REGION_NAME": "us-east-1"}
    for key, value in {**creds, "AWS_STORAGE_BUCKET_NAME": BUCKET, "AWS_S3_ENDPOINT_URL": s3_server}.items():
        monkeypatch.setenv(key, value)
    client = boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    client.create_bucket(Bucket=BUCKET)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": s3_storage_options()},
    }
    yield client
    for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=obj["Key"])
    client.delete_bucket(Bucket=BUCKET)


def _keys(client) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_upload_dedupe_and_serving_through_object_storage(
    s3_storage, api_client_for, client_for, media_redis
):
    api = api_client_for("marketer")
    data = make_image(900, 600, seed=7)
    resp = post_file(api, data, title="On S3")
    assert resp.status_code == 201, resp.content
    asset_id = resp.json()["id"]
    keys = _keys(s3_storage)
    assert len(keys) >= 1
    stored = [k for k in keys if s3_storage.get_object(Bucket=BUCKET, Key=k)["Body"].read() == data]
    assert len(stored) == 1  # the original, byte for byte, in the bucket (not on local disk)

    again = post_file(api, data, name="copy.jpg")
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert [k for k in _keys(s3_storage) if k in stored] == stored  # no second copy

    web = client_for("viewer", workspace_=api.workspace)
    original = web.get(f"/media/assets/{asset_id}/file/")
    assert original.status_code == 200
    assert (
        hashlib.sha256(b"".join(original.streaming_content)).hexdigest() == hashlib.sha256(data).hexdigest()
    )

    thumb = web.get(f"/media/assets/{asset_id}/renditions/thumbnail/")
    assert thumb.status_code == 200
    body = b"".join(thumb.streaming_content) if thumb.streaming else thumb.content
    assert len(body) > 0
    assert len(_keys(s3_storage)) > len(keys)  # the rendition was written to the bucket too


def test_s3_storage_options_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("AWS_STORAGE_BUCKET_NAME", "b")
    monkeypatch.setenv("AWS_S3_ENDPOINT_URL", "https://s3.example.com")
    options = s3_storage_options()
    assert options["bucket_name"] == "b" and options["endpoint_url"] == "https://s3.example.com"
    assert options["default_acl"] is None and options["querystring_auth"] is True
    assert options["file_overwrite"] is False
