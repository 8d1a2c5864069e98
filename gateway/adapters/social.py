"""Social publishing: LinkedIn (Posts API), X (API v2), Instagram (Graph API container + publish)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from gateway.adapters.base import Adapter, FieldSpec
from gateway.adapters.graph import GraphAdapter, as_int
from gateway.capabilities import Capability, SocialMetrics, SocialNetwork, SocialPost, SocialPostResult
from gateway.errors import ErrorKind, ProviderError, error_from_response


class LinkedInAdapter(Adapter):
    """LinkedIn versioned REST Posts API; the post URN comes back in the ``x-restli-id`` header."""

    key = "linkedin"
    label = "LinkedIn"
    network = SocialNetwork.LINKEDIN
    capabilities = frozenset({Capability.POST_SOCIAL})
    credential_fields = ("access_token",)
    option_fields = ("author_urn", "api_version")
    default_base_url = "https://api.linkedin.com"
    docs_url = "https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/posts-api"
    field_specs = {
        "access_token": FieldSpec(
            "Access token",
            "An OAuth token with w_organization_social (or w_member_social).",
            kind="secret",
            required=True,
        ),
        "author_urn": FieldSpec(
            "Author", "urn:li:organization:… for a page or urn:li:person:… for a member.", required=True
        ),
        "api_version": FieldSpec("API version", "YYYYMM. Blank: 202505."),
    }

    def default_headers(self) -> dict[str, str]:
        return {
            **super().default_headers(),
            "Authorization": f"Bearer {self.credential('access_token')}",
            "LinkedIn-Version": str(self.options.get("api_version") or "202505"),
            "X-Restli-Protocol-Version": "2.0.0",
        }

    @property
    def author(self) -> str:
        author = str(self.options.get("author_urn") or "")
        if not author.startswith(("urn:li:organization:", "urn:li:person:")):
            raise self.fail(
                ErrorKind.BAD_INPUT, "LinkedIn author_urn must be urn:li:organization:… or urn:li:person:…"
            )
        return author

    def error_for(self, response: httpx.Response) -> ProviderError:
        err = error_from_response(response, provider=self.key)
        body = self.error_body(response)
        code = str(body.get("code") or body.get("serviceErrorCode") or "")
        if "REVOKED" in code or "EXPIRED" in code or "INVALID_ACCESS_TOKEN" in code:
            err.kind = ErrorKind.REAUTH
        if body.get("message"):
            err.message = f"HTTP {response.status_code} from linkedin: {body['message']}"
        return err

    def post_social(self, post: SocialPost) -> SocialPostResult:
        if not post.text.strip():
            raise self.fail(ErrorKind.BAD_INPUT, "LinkedIn post text is empty")
        if post.media_urls:
            raise self.fail(ErrorKind.BAD_INPUT, "The LinkedIn adapter publishes text and link posts only")
        payload: dict[str, Any] = {
            "author": self.author,
            "commentary": post.text,
            "visibility": "PUBLIC",
            "distribution": {
                "feedDistribution": "MAIN_FEED",
                "targetEntities": [],
                "thirdPartyDistributionChannels": [],
            },
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": False,
        }
        if post.link_url:
            payload["content"] = {"article": {"source": post.link_url, "title": post.text[:200]}}
        resp = self.request("POST", "/rest/posts", json=payload)
        urn = resp.headers.get("x-restli-id") or ""
        if not urn:
            raise self.fail(
                ErrorKind.TRANSIENT,
                "LinkedIn accepted the post but sent no x-restli-id",
                status=resp.status_code,
            )
        return SocialPostResult(
            network=self.network,
            external_id=urn,
            url=f"https://www.linkedin.com/feed/update/{urn}/",
            provider=self.key,
        )

    def social_metrics(self, external_id: str) -> SocialMetrics:
        if self.author.startswith("urn:li:organization:"):
            share_kind = "ugcPosts" if ":ugcPost:" in external_id else "shares"
            query = (
                f"?q=organizationalEntity&organizationalEntity={quote(self.author, safe='')}"
                f"&{share_kind}=List({quote(external_id, safe='')})"
            )
            body = self.json(self.request("GET", "/rest/organizationalEntityShareStatistics" + query))
            elements = body.get("elements") or []
            stats = (elements[0].get("totalShareStatistics") or {}) if elements else {}
            return SocialMetrics(
                impressions=as_int(stats.get("impressionCount")),
                clicks=as_int(stats.get("clickCount")),
                likes=as_int(stats.get("likeCount")),
                shares=as_int(stats.get("shareCount")),
                comments=as_int(stats.get("commentCount")),
                external_id=external_id,
            )
        body = self.json(self.request("GET", f"/rest/socialActions/{quote(external_id, safe='')}"))
        return SocialMetrics(
            likes=as_int((body.get("likesSummary") or {}).get("totalLikes")),
            comments=as_int((body.get("commentsSummary") or {}).get("aggregatedTotalComments")),
            external_id=external_id,
        )

    def health_check(self) -> None:
        if self.author.startswith("urn:li:organization:"):
            self.request("GET", "/rest/organizationAcls?q=roleAssignee&count=1")
        else:
            self.request("GET", "/v2/userinfo")


class XAdapter(Adapter):
    """X API v2 (``POST /2/tweets``) with a user-context OAuth 2.0 bearer token."""

    key = "x"
    label = "X"
    network = SocialNetwork.X
    capabilities = frozenset({Capability.POST_SOCIAL})
    credential_fields = ("access_token",)
    option_fields = ("username",)
    default_base_url = "https://api.x.com"
    docs_url = "https://docs.x.com/x-api/posts/creation-of-a-post"
    field_specs = {
        "access_token": FieldSpec(
            "Access token", "An OAuth 2.0 user token with tweet.write.", kind="secret", required=True
        ),
        "username": FieldSpec("User name", "The account's @handle without @, used in post links."),
    }
    MAX_LENGTH: ClassVar[int] = 280

    def default_headers(self) -> dict[str, str]:
        return {**super().default_headers(), "Authorization": f"Bearer {self.credential('access_token')}"}

    def error_for(self, response: httpx.Response) -> ProviderError:
        err = error_from_response(response, provider=self.key)
        if response.status_code == 429 and err.retry_after is None:
            reset = response.headers.get("x-rate-limit-reset")
            if reset and reset.isdigit():
                err.retry_after = max(0.0, float(reset) - datetime.now(UTC).timestamp())
        body = self.error_body(response)
        detail = body.get("detail") or body.get("title")
        if detail:
            err.message = f"HTTP {response.status_code} from x: {detail}"
            if response.status_code == 403 and "duplicate" in str(detail).lower():
                err.kind = ErrorKind.BAD_INPUT
        return err

    def post_social(self, post: SocialPost) -> SocialPostResult:
        text = post.text if not post.link_url else f"{post.text} {post.link_url}".strip()
        if not text.strip():
            raise self.fail(ErrorKind.BAD_INPUT, "Post text is empty")
        if post.media_urls:
            raise self.fail(ErrorKind.BAD_INPUT, "The X adapter publishes text posts only")
        if len(text) > self.MAX_LENGTH:
            raise self.fail(
                ErrorKind.BAD_INPUT, f"Post is {len(text)} characters; X allows {self.MAX_LENGTH}"
            )
        body = self.json(self.request("POST", "/2/tweets", json={"text": text}))
        tweet_id = str((body.get("data") or {}).get("id") or "")
        if not tweet_id:
            raise self.fail(ErrorKind.TRANSIENT, f"X answered without a post id: {body!r}"[:300])
        user = self.options.get("username") or "i/web"
        return SocialPostResult(
            network=self.network,
            external_id=tweet_id,
            url=f"https://x.com/{user}/status/{tweet_id}",
            provider=self.key,
        )

    def social_metrics(self, external_id: str) -> SocialMetrics:
        body = self.json(
            self.request(
                "GET", f"/2/tweets/{quote(external_id, safe='')}", params={"tweet.fields": "public_metrics"}
            )
        )
        if not body.get("data") and body.get("errors"):
            raise self.fail(ErrorKind.BAD_INPUT, f"X: {body['errors'][0].get('detail', 'post not found')}")
        m = (body.get("data") or {}).get("public_metrics") or {}
        return SocialMetrics(
            impressions=as_int(m.get("impression_count")),
            likes=as_int(m.get("like_count")),
            shares=as_int(m.get("retweet_count")) + as_int(m.get("quote_count")),
            comments=as_int(m.get("reply_count")),
            external_id=external_id,
        )

    def health_check(self) -> None:
        self.request("GET", "/2/users/me")


class InstagramAdapter(GraphAdapter):
    """Instagram Graph API: create a media container, then publish it; carousel for several images."""

    key = "instagram"
    label = "Instagram"
    network = SocialNetwork.INSTAGRAM
    capabilities = frozenset({Capability.POST_SOCIAL})
    option_fields = ("ig_user_id", "api_version", "container_wait")
    docs_url = "https://developers.facebook.com/docs/instagram-platform/content-publishing"
    field_specs = {
        **GraphAdapter.field_specs,
        "ig_user_id": FieldSpec("Instagram user id", "The professional account's numeric id.", required=True),
        "container_wait": FieldSpec(
            "Longest wait for media (seconds)",
            "How long to wait for Instagram to process. Blank: 30.",
            kind="number",
            minimum=1,
        ),
    }

    @property
    def user_id(self) -> str:
        user_id = str(self.options.get("ig_user_id") or "")
        if not user_id.isdigit():
            raise self.fail(ErrorKind.BAD_INPUT, "Instagram ig_user_id is not configured")
        return user_id

    def _wait_ready(self, container_id: str) -> None:
        deadline = time.monotonic() + float(self.options.get("container_wait", 30.0))
        while True:
            status = str(
                self._call("GET", container_id, fields="status_code").get("status_code") or "FINISHED"
            )
            if status in ("FINISHED", "PUBLISHED"):
                return
            if status in ("ERROR", "EXPIRED"):
                raise self.fail(
                    ErrorKind.BAD_INPUT, f"Instagram could not process the media (status {status})"
                )
            if time.monotonic() > deadline:
                raise self.fail(
                    ErrorKind.TRANSIENT, f"Instagram media container still {status}", retry_after=60.0
                )
            time.sleep(1.0)

    def post_social(self, post: SocialPost) -> SocialPostResult:
        if not post.media_urls:
            raise self.fail(ErrorKind.BAD_INPUT, "Instagram posts need at least one image URL")
        if len(post.media_urls) > 10:
            raise self.fail(ErrorKind.BAD_INPUT, "Instagram carousels hold at most 10 images")
        uid = self.user_id
        if len(post.media_urls) == 1:
            container = self._call("POST", f"{uid}/media", image_url=post.media_urls[0], caption=post.text)[
                "id"
            ]
        else:
            children = [
                self._call("POST", f"{uid}/media", image_url=url, is_carousel_item="true")["id"]
                for url in post.media_urls
            ]
            container = self._call(
                "POST", f"{uid}/media", media_type="CAROUSEL", children=",".join(children), caption=post.text
            )["id"]
        self._wait_ready(str(container))
        media_id = str(self._call("POST", f"{uid}/media_publish", creation_id=container)["id"])
        permalink = str(self._call("GET", media_id, fields="permalink").get("permalink") or "")
        return SocialPostResult(network=self.network, external_id=media_id, url=permalink, provider=self.key)

    def social_metrics(self, external_id: str) -> SocialMetrics:
        media = self._call("GET", external_id, fields="like_count,comments_count")
        body = self._call("GET", f"{external_id}/insights", metric="views,reach,shares,saved")
        values = {
            row.get("name"): as_int(
                ((row.get("values") or [{}])[0]).get("value", row.get("total_value", {}).get("value"))
            )
            for row in body.get("data") or []
        }
        return SocialMetrics(
            impressions=values.get("views", 0),
            likes=as_int(media.get("like_count")),
            comments=as_int(media.get("comments_count")),
            shares=values.get("shares", 0),
            external_id=external_id,
        )

    def health_check(self) -> None:
        self._call("GET", self.user_id, fields="id,username")
