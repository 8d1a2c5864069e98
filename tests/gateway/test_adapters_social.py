import json

import pytest

from gateway.adapters.social import InstagramAdapter, LinkedInAdapter, XAdapter
from gateway.capabilities import SocialPost
from gateway.errors import ErrorKind, ProviderError
from tests.gateway.conftest import slow

ORG = "urn:li:organization:5515715"


def linkedin(url, author=ORG):
    return LinkedInAdapter(
        base_url=url,
        credentials={"access_token": "li-tok"},
        options={"author_urn": author, "api_version": "202505"},
    )


def test_linkedin_post_reads_id_from_restli_header(httpserver):
    httpserver.expect_request(
        "/rest/posts",
        method="POST",
        headers={
            "Authorization": "Bearer li-tok",
            "LinkedIn-Version": "202505",
            "X-Restli-Protocol-Version": "2.0.0",
        },
    ).respond_with_data("", status=201, headers={"x-restli-id": "urn:li:share:6844785523593134080"})
    result = linkedin(httpserver.url_for("")).post_social(SocialPost(network="linkedin", text="Launch day!"))
    body = httpserver.log[0][0].get_json()
    assert (
        body["author"] == ORG
        and body["commentary"] == "Launch day!"
        and body["lifecycleState"] == "PUBLISHED"
    )
    assert body["distribution"]["feedDistribution"] == "MAIN_FEED"
    assert result.external_id == "urn:li:share:6844785523593134080"
    assert result.url == "https://www.linkedin.com/feed/update/urn:li:share:6844785523593134080/"


def test_linkedin_org_metrics(httpserver):
    httpserver.expect_request("/rest/organizationalEntityShareStatistics").respond_with_json(
        {
            "elements": [
                {
                    "totalShareStatistics": {
                        "impressionCount": 1200,
                        "clickCount": 40,
                        "likeCount": 30,
                        "shareCount": 4,
                        "commentCount": 6,
                    }
                }
            ]
        }
    )
    m = linkedin(httpserver.url_for("")).social_metrics("urn:li:share:1")
    request = httpserver.log[0][0]
    assert request.args["q"] == "organizationalEntity" and request.args["shares"] == "List(urn:li:share:1)"
    assert (m.impressions, m.clicks, m.likes, m.shares, m.comments) == (1200, 40, 30, 4, 6)


def test_linkedin_member_metrics_from_social_actions(httpserver):
    httpserver.expect_request("/rest/socialActions/urn:li:share:9").respond_with_json(
        {"likesSummary": {"totalLikes": 12}, "commentsSummary": {"aggregatedTotalComments": 3}}
    )
    m = linkedin(httpserver.url_for(""), author="urn:li:person:abc").social_metrics("urn:li:share:9")
    assert (m.likes, m.comments) == (12, 3)


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (
            401,
            {"status": 401, "serviceErrorCode": 65600, "code": "REVOKED_ACCESS_TOKEN", "message": "revoked"},
            ErrorKind.REAUTH,
        ),
        (403, {"status": 403, "message": "Not enough permissions"}, ErrorKind.REAUTH),
        (422, {"status": 422, "message": "Content is a duplicate"}, ErrorKind.BAD_INPUT),
        (429, {"status": 429, "message": "Resource level throttle limit"}, ErrorKind.THROTTLED),
        (504, {"status": 504, "message": "Gateway timeout"}, ErrorKind.TRANSIENT),
    ],
)
def test_linkedin_error_forms(httpserver, status, body, kind):
    httpserver.expect_request("/rest/posts").respond_with_json(body, status=status)
    with pytest.raises(ProviderError) as info:
        linkedin(httpserver.url_for("")).post_social(SocialPost(network="linkedin", text="x"))
    assert info.value.kind is kind and body["message"] in info.value.message


def test_linkedin_refuses_bad_author_and_media(httpserver):
    for adapter, post in (
        (linkedin(httpserver.url_for(""), author="acme"), SocialPost(network="linkedin", text="x")),
        (
            linkedin(httpserver.url_for("")),
            SocialPost(network="linkedin", text="x", media_urls=("https://i/1.png",)),
        ),
    ):
        with pytest.raises(ProviderError) as info:
            adapter.post_social(post)
        assert info.value.kind is ErrorKind.BAD_INPUT
    assert httpserver.log == []


# ------------------------------------------------------------------------------------------------ X


def x(url, **kw):
    return XAdapter(base_url=url, credentials={"access_token": "x-tok"}, options={"username": "acme"}, **kw)


def test_x_post_and_metrics(httpserver):
    httpserver.expect_request("/2/tweets", method="POST", json={"text": "Hello world"}).respond_with_json(
        {"data": {"id": "1445880548472328192", "text": "Hello world"}}, status=201
    )
    httpserver.expect_request(
        "/2/tweets/1445880548472328192", query_string={"tweet.fields": "public_metrics"}
    ).respond_with_json(
        {
            "data": {
                "id": "1445880548472328192",
                "public_metrics": {
                    "retweet_count": 2,
                    "reply_count": 3,
                    "like_count": 10,
                    "quote_count": 1,
                    "impression_count": 900,
                },
            }
        }
    )
    adapter = x(httpserver.url_for(""))
    result = adapter.post_social(SocialPost(network="x", text="Hello world"))
    assert (
        result.external_id == "1445880548472328192"
        and result.url == "https://x.com/acme/status/1445880548472328192"
    )
    m = adapter.social_metrics(result.external_id)
    assert (m.impressions, m.likes, m.shares, m.comments) == (900, 10, 3, 3)


def test_x_429_uses_rate_limit_reset_header(httpserver):
    import time

    reset = int(time.time()) + 60
    httpserver.expect_request("/2/tweets").respond_with_json(
        {"title": "Too Many Requests", "detail": "Too Many Requests", "status": 429},
        status=429,
        headers={"x-rate-limit-reset": str(reset)},
    )
    with pytest.raises(ProviderError) as info:
        x(httpserver.url_for("")).post_social(SocialPost(network="x", text="hi"))
    assert info.value.kind is ErrorKind.THROTTLED and 50 <= info.value.retry_after <= 60


@pytest.mark.parametrize(
    ("status", "detail", "kind"),
    [
        (401, "Unauthorized", ErrorKind.REAUTH),
        (403, "You are not allowed to create a Tweet with duplicate content.", ErrorKind.BAD_INPUT),
        (403, "You are not permitted to perform this action.", ErrorKind.REAUTH),
        (400, "Invalid Request", ErrorKind.BAD_INPUT),
        (503, "Service Unavailable", ErrorKind.TRANSIENT),
    ],
)
def test_x_error_forms(httpserver, status, detail, kind):
    httpserver.expect_request("/2/tweets").respond_with_json(
        {"title": "t", "detail": detail, "status": status}, status=status
    )
    with pytest.raises(ProviderError) as info:
        x(httpserver.url_for("")).post_social(SocialPost(network="x", text="hi"))
    assert info.value.kind is kind


def test_x_too_long_is_bad_input_and_timeout_transient(httpserver):
    with pytest.raises(ProviderError) as info:
        x(httpserver.url_for("")).post_social(SocialPost(network="x", text="a" * 281))
    assert info.value.kind is ErrorKind.BAD_INPUT
    httpserver.expect_request("/2/users/me").respond_with_handler(handler := slow(0.6))
    with pytest.raises(ProviderError) as info:
        x(httpserver.url_for(""), timeout=0.2).health_check()
    assert info.value.kind is ErrorKind.TRANSIENT
    handler.wait()


# ---------------------------------------------------------------------------------------- Instagram


def ig(url):
    return InstagramAdapter(
        base_url=url,
        credentials={"access_token": "ig-tok"},
        options={"ig_user_id": "17841400008460056", "api_version": "v21.0"},
    )


def test_instagram_container_then_publish(httpserver):
    base = "/v21.0/17841400008460056"
    httpserver.expect_request(f"{base}/media", method="POST").respond_with_json({"id": "17889455560051444"})
    httpserver.expect_request("/v21.0/17889455560051444", method="GET").respond_with_json(
        {"status_code": "FINISHED", "id": "17889455560051444"}
    )
    httpserver.expect_request(f"{base}/media_publish", method="POST").respond_with_json(
        {"id": "17920238422030506"}
    )
    httpserver.expect_request("/v21.0/17920238422030506", method="GET").respond_with_json(
        {"permalink": "https://www.instagram.com/p/Cabc123/", "id": "17920238422030506"}
    )
    result = ig(httpserver.url_for("")).post_social(
        SocialPost(network="instagram", text="New drop", media_urls=("https://cdn.example/1.jpg",))
    )
    create = httpserver.log[0][0]
    assert create.form["image_url"] == "https://cdn.example/1.jpg" and create.form["caption"] == "New drop"
    assert create.form["access_token"] == "ig-tok"
    publish = [r for r, _ in httpserver.log if r.path.endswith("media_publish")][0]
    assert publish.form["creation_id"] == "17889455560051444"
    assert result.external_id == "17920238422030506" and result.url == "https://www.instagram.com/p/Cabc123/"


def test_instagram_carousel_creates_children(httpserver):
    base = "/v21.0/17841400008460056"
    ids = iter(["c1", "c2", "parent"])
    from werkzeug import Response

    httpserver.expect_request(f"{base}/media", method="POST").respond_with_handler(
        lambda r: Response(json.dumps({"id": next(ids)}), content_type="application/json")
    )
    httpserver.expect_request("/v21.0/parent").respond_with_json({"status_code": "FINISHED"})
    httpserver.expect_request(f"{base}/media_publish").respond_with_json({"id": "m1"})
    httpserver.expect_request("/v21.0/m1").respond_with_json({"permalink": "https://www.instagram.com/p/x/"})
    ig(httpserver.url_for("")).post_social(
        SocialPost(network="instagram", text="two", media_urls=("https://a/1.jpg", "https://a/2.jpg"))
    )
    creates = [r.form for r, _ in httpserver.log if r.path.endswith("/media")]
    assert creates[0]["is_carousel_item"] == "true" and creates[2]["media_type"] == "CAROUSEL"
    assert creates[2]["children"] == "c1,c2"


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (
            {"message": "Error validating access token", "type": "OAuthException", "code": 190},
            ErrorKind.REAUTH,
        ),
        (
            {"message": "Application request limit reached", "type": "OAuthException", "code": 4},
            ErrorKind.THROTTLED,
        ),
        ({"message": "Invalid parameter", "type": "OAuthException", "code": 100}, ErrorKind.BAD_INPUT),
        (
            {
                "message": "An unexpected error has occurred",
                "type": "OAuthException",
                "code": 2,
                "is_transient": True,
            },
            ErrorKind.TRANSIENT,
        ),
    ],
)
def test_instagram_graph_errors(httpserver, error, kind):
    httpserver.expect_request("/v21.0/17841400008460056/media").respond_with_json(
        {"error": error}, status=400
    )
    with pytest.raises(ProviderError) as info:
        ig(httpserver.url_for("")).post_social(
            SocialPost(network="instagram", text="x", media_urls=("https://a/1.jpg",))
        )
    assert info.value.kind is kind and error["message"] in info.value.message


def test_instagram_requires_image(httpserver):
    with pytest.raises(ProviderError) as info:
        ig(httpserver.url_for("")).post_social(SocialPost(network="instagram", text="x"))
    assert info.value.kind is ErrorKind.BAD_INPUT


def test_instagram_metrics(httpserver):
    httpserver.expect_request("/v21.0/m1").respond_with_json({"like_count": 14, "comments_count": 2})
    httpserver.expect_request("/v21.0/m1/insights").respond_with_json(
        {
            "data": [
                {"name": "views", "period": "lifetime", "values": [{"value": 530}]},
                {"name": "shares", "period": "lifetime", "values": [{"value": 5}]},
            ]
        }
    )
    m = ig(httpserver.url_for("")).social_metrics("m1")
    assert (m.impressions, m.likes, m.comments, m.shares) == (530, 14, 2, 5)
