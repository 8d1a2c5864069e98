"""UTM parameters on every tracked link: campaign defaults, a link's own utm_* wins."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from publishing.services import campaigns, sending
from publishing.services.tracking import UTM_KEYS, utm_apply, utm_clean

from .conftest import make_audience, make_content, smtp_account
from .test_tracking import BROWSER, links, path_of

HTML = (
    "<html><body>"
    '<a href="https://acme.example/offer?ref=mail">Offer</a>'
    '<a href="https://acme.example/hero?utm_content=hero#top">Hero</a>'
    '<a href="{{ unsubscribe_url }}">Unsubscribe</a></body></html>'
)


@pytest.mark.django_db
def test_clicks_land_with_campaign_utm_and_per_link_overrides(
    workspace, smtp_sink, fast_gateway, settings, django_capture_on_commit_callbacks
):
    smtp_account(workspace, smtp_sink.host, smtp_sink.port)
    contact_list, _ = make_audience(workspace, 1)
    campaign = campaigns.campaign_create(
        workspace=workspace,
        name="Spring",
        content=make_content(workspace, html=HTML),
        audience={"lists": [contact_list.pk]},
    )
    campaigns.campaign_update(
        campaign=campaign,
        utm={"utm_source": "aicmo", "utm_medium": "email", "utm_campaign": "spring", "utm_content": "body"},
    )
    campaigns.campaign_send_now(campaign=campaign)
    sending.campaign_send_batch(campaign_id=campaign.pk)
    html = smtp_sink.wait_for(1)[0].get_body(("html",)).get_content()
    clicks = [u for u in links(html) if "/publishing/t/c/" in u]
    targets = [Client().get(path_of(u, settings), HTTP_USER_AGENT=BROWSER)["Location"] for u in clicks]
    assert targets == [
        "https://acme.example/offer?ref=mail&utm_source=aicmo&utm_medium=email&utm_campaign=spring"
        "&utm_content=body",
        "https://acme.example/hero?utm_content=hero&utm_source=aicmo&utm_medium=email&utm_campaign=spring#top",
    ]


@pytest.mark.django_db
def test_campaign_utm_is_validated(workspace):
    from .conftest import make_campaign

    campaign = make_campaign(workspace, 1)
    with pytest.raises(ValidationError, match="Unknown UTM"):
        campaigns.campaign_update(campaign=campaign, utm={"utm_bogus": "x"})
    with pytest.raises(ValidationError, match="at most 200"):
        campaigns.campaign_update(campaign=campaign, utm={"utm_source": "x" * 201})
    assert utm_clean({"utm_source": "  ", "utm_medium": " email "}) == {"utm_medium": "email"}


_values = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=12
)


@given(
    utm=st.dictionaries(st.sampled_from(UTM_KEYS), _values.filter(str.strip)),
    own=st.dictionaries(st.sampled_from(UTM_KEYS + ("ref", "page")), _values),
    fragment=st.sampled_from(["", "top"]),
)
def test_utm_apply_adds_missing_defaults_and_keeps_the_link_as_written(utm, own, fragment):
    from urllib.parse import urlencode

    url = (
        "https://acme.example/p"
        + (f"?{urlencode(own)}" if own else "")
        + (f"#{fragment}" if fragment else "")
    )
    result = utm_apply(url, utm)
    assert result.startswith(url.split("#")[0])  # the link's own query is kept byte for byte
    parts = urlsplit(result)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    for key in UTM_KEYS:
        expected = own.get(key, utm.get(key))
        assert params.get(key) == expected
    assert parts.fragment == fragment
