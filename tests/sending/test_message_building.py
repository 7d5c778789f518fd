"""Outbound MIME: threading and one-click unsubscribe headers, both parts, tracked links and pixel."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default

from imail.mail.html import html_to_text
from imail.mail.mime import Outbound, build, make_message_id
from imail.tracking.links import add_pixel, rewrite_links


def test_headers_for_threading_and_unsubscribe():
    first_id = make_message_id("acme.io")
    msg = build(
        Outbound(
            from_email="ana@acme.io",
            from_name="Ana Díaz",
            to_email="bob@example.com",
            subject="Re: Quick question",
            text="Hi Bob",
            html="<p>Hi Bob</p>",
            message_id=make_message_id("acme.io"),
            in_reply_to=first_id,
            references=[first_id],
            unsubscribe_url="https://t.acme.io/u/tok",
            unsubscribe_mailto="unsubscribe+tok@acme.io",
        )
    )
    parsed = message_from_bytes(msg, policy=default)
    assert parsed["Message-ID"].endswith("@acme.io>")
    assert parsed["In-Reply-To"] == first_id and parsed["References"] == first_id
    assert parsed["List-Unsubscribe"] == "<mailto:unsubscribe+tok@acme.io>, <https://t.acme.io/u/tok>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["From"].addresses[0].display_name == "Ana Díaz"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]


def test_links_are_rewritten_in_order_and_others_left_alone():
    markup = (
        '<p><a href="https://acme.io/pricing?a=1&amp;b=2">pricing</a> '
        "<a href='mailto:ana@acme.io'>mail</a> <A HREF=\"http://acme.io/demo\">demo</A></p>"
    )
    rewritten, links = rewrite_links(markup, lambda i: f"https://t.io/c/{i}")
    assert links == ["https://acme.io/pricing?a=1&b=2", "http://acme.io/demo"]
    assert 'href="https://t.io/c/0"' in rewritten and 'HREF="https://t.io/c/1"' in rewritten
    assert "mailto:ana@acme.io" in rewritten


def test_pixel_goes_before_the_closing_body_and_is_no_image_tag():
    marked = add_pixel("<html><body><p>x</p></body></html>", "https://t.io/o.gif")
    assert marked.endswith(
        "<div style=\"background-image:url('https://t.io/o.gif');width:1px;height:1px;font-size:1px;"
        'line-height:1px"></div></body></html>'
    )
    assert "<img" not in marked  # spam filters score a short email with an image as image-only


def test_html_to_text_keeps_paragraphs_and_link_targets():
    text = html_to_text('<p>Hi Bob,</p><p>See <a href="https://acme.io">our site</a>.</p><style>p{}</style>')
    assert text == "Hi Bob,\n\nSee our site (https://acme.io)."


def test_html_to_text_names_a_link_once_and_unescapes_once():
    assert (
        html_to_text('<p>Book at <a href="https://acme.io/book">https://acme.io/book</a></p>')
        == "Book at https://acme.io/book"
    )
    assert html_to_text("<p>a &amp;lt; b &amp; c</p>") == "a &lt; b & c"
