"""Blog comments from HTML (WordPress, microformats2) and from comment feeds (RSS, Atom).

The fixtures under tests/data/site/blog and tests/data/site/feeds copy real markup: Twenty
Twenty-One (HTML5 walker), Twenty Ten (``commentlist``, dates as text), a Twenty Twenty-Four
style block theme, an IndieWeb static site, and WordPress's own RSS 2.0 and Atom comment feed
templates. Pages are parsed as if served by the test site server at ``BASE``.
"""

from __future__ import annotations

import random
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from parsel import Selector

from earful.spiders.comments import extract_comments, wordpress_comment_key
from earful.spiders.feeds import FeedResult, discover_comment_feeds, extract_feed
from earful.spiders.items import Mention

SITE = Path(__file__).resolve().parent / "data" / "site"
BASE = "http://127.0.0.1:8000"


def page(name: str) -> bytes:
    return (SITE / "blog" / name).read_bytes()


def feed(name: str) -> bytes:
    return (SITE / "feeds" / name).read_bytes()


def comments_of(name: str, *, site_is_brand: bool = False) -> list[Mention]:
    return extract_comments(page(name), f"{BASE}/blog/{name}", site_is_brand=site_is_brand)


def by_key(mentions: list[Mention]) -> dict[str | None, Mention]:
    return {m.external_key: m for m in mentions}


def visible_text(html: str | None) -> str:
    """What a reader sees of an HTML fragment: text nodes, entities decoded, spaces collapsed."""
    assert html is not None
    return " ".join("".join(Selector(text=f"<div>{html}</div>").xpath("//text()").getall()).split())


def instant(value: str | datetime | None) -> datetime:
    assert isinstance(value, str)
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return parsedate_to_datetime(value)


# --- WordPress HTML5 (Twenty Twenty-One) --------------------------------------------------------


def test_html5_thread_gives_each_approved_comment_once_in_page_order() -> None:
    mentions = comments_of("post-nested.html")

    assert [(m.external_key, m.author, m.published) for m in mentions] == [
        ("comment-101", "Jane Doe", "2026-03-12T09:41:00+00:00"),
        ("comment-102", "Acme Team", "2026-03-12T11:05:00+00:00"),
        ("comment-103", "Jane Doe", "2026-03-12T14:20:00+00:00"),
        ("comment-104", "Marco Rossi", "2026-03-13T08:15:00+00:00"),
        ("comment-105", "Acme Team", "2026-03-13T10:30:00+00:00"),
        ("comment-106", "Priya Nair", "2026-03-14T19:02:00+00:00"),
    ]
    assert {m.kind for m in mentions} == {"comment"}
    assert {m.found_by for m in mentions} == {"wordpress"}
    assert [m.url for m in mentions] == [f"{BASE}/blog/post-nested.html#comment-{n}" for n in range(101, 107)]
    # The page declares en-US for the whole site; a comment's language is left to the pipeline.
    assert {m.language for m in mentions} == {None}


def test_replies_link_to_their_parent_comment_across_three_levels() -> None:
    parents = {m.external_key: m.parent_key for m in comments_of("post-nested.html")}

    assert parents == {
        "comment-101": None,
        "comment-102": "comment-101",
        "comment-103": "comment-102",
        "comment-104": None,
        "comment-105": "comment-104",
        "comment-106": "comment-104",
    }


def test_comment_text_is_the_inner_html_of_the_comment_content() -> None:
    comments = by_key(comments_of("post-nested.html"))

    assert comments["comment-105"].text == (
        '<p>Marco, that should not happen. Please write to <a href="mailto:support@acme.example">'
        "support@acme.example</a> with your order number and we will replace it right away.</p>"
    )
    assert comments["comment-101"].text == (
        "<p>Bought the Acme Kettle 2 last week. It boils a full litre in under two minutes and it is "
        "properly quiet \u2013 my old one sounded like a jet engine.</p>\n"
        "<p>One question: is the limescale filter dishwasher-safe?</p>"
    )
    for mention in comments.values():
        assert mention.text is not None
        assert "says:" not in mention.text
        assert "Reply" not in mention.text
        assert "March" not in mention.text


def test_post_author_replies_are_brand_responses_only_on_the_brands_own_blog() -> None:
    third_party = comments_of("post-nested.html", site_is_brand=False)
    own_blog = comments_of("post-nested.html", site_is_brand=True)

    assert [m.external_key for m in third_party if m.is_brand_response] == []
    assert [m.external_key for m in own_blog if m.is_brand_response] == ["comment-102", "comment-105"]


def test_comment_awaiting_moderation_is_skipped_with_its_notice() -> None:
    mentions = comments_of("post-nested.html") + comments_of("post-fr.html")
    keys = {m.external_key for m in mentions}

    assert "comment-107" not in keys
    assert "comment-305" not in keys
    assert not any("moderation" in (m.text or "") or "modération" in (m.text or "") for m in mentions)
    assert "Tom Becker" not in {m.author for m in mentions}


LABELS_IN_OTHER_WORDS = {
    '<span class="says">says:</span>': '<span class="says">さんのコメント:</span>',
    ">Reply<": ">返信<",
    "Reply to ": "返信先 ",
    " at ": " 時 ",
    "March ": "3月 ",
    "Your comment is awaiting moderation.": "コメントは承認待ちです。",
    "6 comments": "コメント 6 件",
    "Leave a comment": "コメントを残す",
}


def test_theme_labels_in_any_language_give_the_same_comments() -> None:
    original = page("post-nested.html").decode("utf-8")
    relabelled = original
    for english, other in LABELS_IN_OTHER_WORDS.items():
        assert english in relabelled
        relabelled = relabelled.replace(english, other)

    url = f"{BASE}/blog/post-nested.html"
    assert extract_comments(relabelled, url, site_is_brand=True) == extract_comments(
        original, url, site_is_brand=True
    )


# --- German: Twenty Ten, commentlist, dates only as text -------------------------------------


def test_german_twenty_ten_page_keeps_dates_as_written_and_skips_the_pingback() -> None:
    mentions = comments_of("post-de.html", site_is_brand=True)

    assert [(m.external_key, m.parent_key, m.author, m.published, m.is_brand_response) for m in mentions] == [
        ("comment-201", None, "Klaus Becker", "12. März 2026 um 09:41 Uhr", False),
        ("comment-202", "comment-201", "Sabine Krüger", "12. März 2026 um 10:15 Uhr", True),
        ("comment-203", "comment-202", "Klaus Becker", "12. März 2026 um 18:02 Uhr", False),
        ("comment-204", None, "Jürgen Weiß", "13. März 2026 um 07:30 Uhr", False),
    ]
    assert mentions[3].text == (
        "<p>Bei mir schaltet er nach dem Kochen nicht zuverlässig ab. Schade, sonst ein schönes Gerät.</p>\n"
        "<p>Der Kundendienst hat sich noch nicht gemeldet.</p>"
    )
    assert mentions[0].url == f"{BASE}/blog/post-de.html#comment-201"
    assert not any("sagt:" in (m.author or "") + (m.text or "") for m in mentions)
    assert not any("Antworten" in (m.text or "") or "Pingback" in (m.text or "") for m in mentions)


# --- French: block theme ----------------------------------------------------------------------


def test_french_block_theme_comments_with_nested_replies() -> None:
    mentions = comments_of("post-fr.html", site_is_brand=True)

    assert [(m.external_key, m.parent_key, m.author, m.published, m.is_brand_response) for m in mentions] == [
        ("comment-301", None, "Élodie Martin", "2026-03-12T10:41:00+01:00", False),
        ("comment-302", "comment-301", "Rédaction", "2026-03-12T12:03:00+01:00", True),
        ("comment-303", "comment-302", "Julien Moreau", "2026-03-13T08:20:00+01:00", False),
        ("comment-304", None, "Camille Roux", "2026-03-14T21:15:00+01:00", False),
    ]
    assert mentions[2].text == "<p>Chez moi aussi. Par contre la poignée chauffe beaucoup trop.</p>"
    assert not any("Répondre" in (m.text or "") for m in mentions)


# --- Swedish: microformats2 ---------------------------------------------------------------------


def test_swedish_mf2_comments_nested_and_in_reply_to() -> None:
    url = f"{BASE}/blog/post-sv.html"
    mentions = comments_of("post-sv.html", site_is_brand=True)

    assert [(m.external_key, m.parent_key, m.author, m.published, m.is_brand_response) for m in mentions] == [
        (f"{url}#c-401", None, "Nils Berg", "2026-03-12T09:41:00+0100", False),
        (f"{url}#c-402", f"{url}#c-401", "Lina Ek", "2026-03-12T10:02:00+0100", True),
        (f"{url}#c-403", f"{url}#c-402", "Nils Berg", "2026-03-12T12:30:00+0100", False),
        (f"{url}#c-404", None, "Karin Holm", "2026-03-13T18:15:00+0100", False),
        (
            "https://erik.example.se/2026/03/samma-problem/",
            f"{url}#c-404",
            "Erik Sandberg",
            "2026-03-14T20:10:00+0100",
            False,
        ),
    ]
    assert {m.found_by for m in mentions} == {"h-entry"}
    assert {m.kind for m in mentions} == {"comment"}
    assert mentions[1].text == "<p>Ungefär två minuter med kallt kranvatten.</p>"
    assert mentions[4].url == "https://erik.example.se/2026/03/samma-problem/"
    assert not any(m.is_brand_response for m in comments_of("post-sv.html", site_is_brand=False))


def test_comment_printed_as_wordpress_and_as_mf2_is_returned_once() -> None:
    html = """<html><body><article class="h-entry"><div class="e-content"><p>Post</p></div>
    <ol class="comment-list">
      <li id="comment-9" class="comment even depth-1 p-comment h-entry">
        <article id="div-comment-9" class="comment-body">
          <footer class="comment-meta"><address class="comment-author p-author h-card vcard">
            <cite class="fn p-name">Ana</cite></address>
            <a class="u-url" href="#comment-9"
              ><time class="dt-published" datetime="2026-03-01T10:00:00+00:00">1/3</time></a>
          </footer>
          <div class="comment-content e-content"><p>Hola</p></div>
        </article>
      </li>
    </ol></article></body></html>"""

    mentions = extract_comments(html, "https://blog.example/post/")

    assert [(m.external_key, m.author, m.found_by, m.text) for m in mentions] == [
        ("comment-9", "Ana", "wordpress", "<p>Hola</p>")
    ]


def test_core_xhtml_walker_body_paragraphs_are_the_text_and_pings_are_skipped() -> None:
    html = """<html><body><ol class="commentlist">
      <li class="comment even thread-even depth-1" id="comment-31">
        <div id="div-comment-31" class="comment-body">
          <div class="comment-author vcard"><img class="avatar" src="a.png" alt="">
            <cite class="fn">Ola</cite> <span class="says">skriver:</span></div>
          <div class="comment-meta commentmetadata"><a href="/p/#comment-31">1 mars 2026 kl. 10:00</a>
            <a class="comment-edit-link" href="/wp-admin/comment.php?c=31">Redigera</a></div>
          <p>Första stycket.</p>
          <p>Andra stycket.</p>
          <div class="reply"><a class="comment-reply-link" href="?replytocom=31#respond">Svara</a></div>
        </div>
      </li>
      <li id="comment-32" class="pingback odd alt thread-odd depth-1">
        <div class="comment-body">Pingback: <a href="https://other.example/" class="url">Other</a></div>
      </li>
    </ol></body></html>"""

    mentions = extract_comments(html, "https://blog.example/p/")

    assert len(mentions) == 1
    assert mentions[0].external_key == "comment-31"
    assert mentions[0].author == "Ola"
    assert mentions[0].published == "1 mars 2026 kl. 10:00"
    assert mentions[0].url == "https://blog.example/p/#comment-31"
    assert visible_text(mentions[0].text) == "Första stycket. Andra stycket."


def test_core_walker_in_div_style_and_twenty_eleven_markup() -> None:
    div_style = """<div class="commentlist">
      <div class="comment byuser comment-author-ed bypostauthor even thread-even depth-1" id="comment-41">
        <div class="comment-author vcard"><cite class="fn">Ed</cite> <span class="says">dit :</span></div>
        <div class="comment-meta commentmetadata"><a href="/p/#comment-41">2 mars 2026 à 9 h 00</a></div>
        <p>Bonjour.</p>
        <div class="reply"><a class="comment-reply-link" href="?replytocom=41#respond">Répondre</a></div>
        <div class="children">
          <div class="comment odd alt depth-2" id="comment-42">
            <div class="comment-author vcard"><cite class="fn">Flo</cite></div>
            <div class="comment-meta commentmetadata"><a href="/p/#comment-42">2 mars 2026 à 9 h 30</a></div>
            <p>Salut.</p>
          </div>
        </div>
      </div></div>"""
    twenty_eleven = """<ol class="commentlist">
      <li class="comment even thread-even depth-1" id="li-comment-51">
        <article id="comment-51" class="comment">
          <footer class="comment-meta"><div class="comment-author vcard">
            <img alt="" src="a.png" class="avatar avatar-68 photo" height="68" width="68">
            <span class="fn">Gus</span> el <a href="/p/#comment-51"><time datetime="2026-03-02T10:00:00+01:00"
              >2 marzo 2026 a las 10:00</time></a> <span class="says">dijo:</span>
          </div></footer>
          <div class="comment-content"><p>Muy bueno.</p></div>
          <div class="reply"><a class="comment-reply-link" href="?replytocom=51#respond">Responder</a></div>
        </article>
      </li></ol>"""

    french = extract_comments(div_style, "https://blog.example/p/", site_is_brand=True)
    spanish = extract_comments(twenty_eleven, "https://blog.example/p/")

    assert [
        (m.external_key, m.parent_key, m.author, m.published, m.text, m.is_brand_response) for m in french
    ] == [
        ("comment-41", None, "Ed", "2 mars 2026 à 9 h 00", "<p>Bonjour.</p>", True),
        ("comment-42", "comment-41", "Flo", "2 mars 2026 à 9 h 30", "<p>Salut.</p>", False),
    ]
    assert [(m.external_key, m.author, m.published, m.text) for m in spanish] == [
        ("comment-51", "Gus", "2026-03-02T10:00:00+01:00", "<p>Muy bueno.</p>")
    ]


def test_mf2_copy_of_a_wordpress_comment_without_its_own_url_is_dropped() -> None:
    html = """<html><body><article class="h-entry"><div class="e-content"><p>Post</p></div>
    <ol class="comment-list">
      <li id="comment-9" class="comment even depth-1">
        <article id="div-comment-9" class="comment-body p-comment h-cite">
          <footer class="comment-meta"><div class="comment-author vcard p-author h-card">
            <b class="fn p-name">Ana</b></div>
            <div class="comment-metadata"><a href="#comment-9"><time class="dt-published"
              datetime="2026-03-01T10:00:00+00:00">1/3</time></a></div>
          </footer>
          <div class="comment-content e-content"><p>Hola &amp; adiós</p></div>
        </article>
      </li>
    </ol></article></body></html>"""

    mentions = extract_comments(html, "https://blog.example/post/")

    assert [(m.external_key, m.found_by) for m in mentions] == [("comment-9", "wordpress")]


def test_identical_mf2_comments_by_different_people_are_both_kept() -> None:
    html = """<html><body><article class="h-entry"><a class="u-url" href="/post/">Post</a>
      <div class="p-comment h-cite"><span class="p-author h-card">Ann</span>
        <div class="e-content">+1</div></div>
      <div class="p-comment h-cite"><span class="p-author h-card">Bob</span>
        <div class="e-content">+1</div></div>
    </article></body></html>"""

    mentions = extract_comments(html, "https://blog.example/post/")

    assert [(m.author, m.text, m.external_key, m.parent_key) for m in mentions] == [
        ("Ann", "+1", None, None),
        ("Bob", "+1", None, None),
    ]


def test_the_blogs_own_reply_posts_to_other_sites_are_not_comments() -> None:
    html = """<html><body><div class="h-feed">
      <article class="h-entry"><a class="u-in-reply-to" href="https://elsewhere.example/a">a</a>
        <div class="e-content">I disagree with this article.</div>
        <a class="u-url" href="/2026/03/reply-1/">permalink</a></article>
      <article class="h-entry"><div class="e-content">A note.</div>
        <a class="u-url" href="/2026/03/note/">permalink</a></article>
    </div></body></html>"""

    assert extract_comments(html, "https://blog.example/") == []


def test_page_without_comments_gives_nothing() -> None:
    assert extract_comments((SITE / "forum" / "page-1.html").read_bytes(), f"{BASE}/forum/page-1.html") == []


# --- Feeds ----------------------------------------------------------------------------------


def test_rss_comment_feed_gives_comments_keyed_like_the_page() -> None:
    result = extract_feed(feed("comments-rss.xml"), f"{BASE}/feeds/comments-rss.xml")

    assert isinstance(result, FeedResult)
    assert result.error is None
    assert [(m.external_key, m.parent_key, m.author, m.published) for m in result.mentions] == [
        ("comment-106", "comment-104", "Priya Nair", "Sat, 14 Mar 2026 19:02:00 +0000"),
        ("comment-105", "comment-104", "Acme Team", "Fri, 13 Mar 2026 10:30:00 +0000"),
        ("comment-104", None, "Marco Rossi", "Fri, 13 Mar 2026 08:15:00 +0000"),
        ("comment-103", "comment-102", "Jane Doe", "Thu, 12 Mar 2026 14:20:00 +0000"),
        ("comment-102", "comment-101", "Acme Team", "Thu, 12 Mar 2026 11:05:00 +0000"),
        ("comment-101", None, "Jane Doe", "Thu, 12 Mar 2026 09:41:00 +0000"),
    ]
    assert {(m.kind, m.found_by, m.title, m.is_brand_response) for m in result.mentions} == {
        ("comment", "rss", None, False)
    }
    # WordPress's translated "In reply to <a>…</a>." paragraph became parent_key, not text.
    assert result.mentions[0].text == "<p>Same problem here, and the handle gets hot as well.</p>"
    assert list(result) == result.mentions


@pytest.mark.parametrize("name", ["comments-rss.xml", "comments-atom.xml"])
def test_same_comment_from_page_and_from_feed_is_the_same_mention(name: str) -> None:
    html = by_key(comments_of("post-nested.html"))
    fed = by_key(extract_feed(feed(name), f"{BASE}/feeds/{name}").mentions)

    assert set(fed) == set(html)
    for key, from_feed in fed.items():
        from_page = html[key]
        assert from_feed.url == from_page.url
        assert from_feed.author == from_page.author
        assert from_feed.parent_key == from_page.parent_key
        assert instant(from_feed.published) == instant(from_page.published)
        assert visible_text(from_feed.text) == visible_text(from_page.text)


def rss_item(content: str) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
    <rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
      <channel><title>Kommentare zu: Wasserkocher</title><link>https://blog.example/p/</link>
        <item><title>Von: Klaus</title><link>https://blog.example/p/#comment-202</link>
          <guid isPermaLink="false">https://blog.example/?p=7#comment-202</guid>
          <content:encoded><![CDATA[{content}]]></content:encoded></item>
      </channel></rss>""".encode()


@pytest.mark.parametrize(
    "prefix",
    [
        '<p>Als Antwort auf <a href="https://blog.example/p/#comment-201">Sabine</a>.</p>',
        '<p>En réponse à <a rel="nofollow" href="https://blog.example/p/comment-page-2/#comment-201">S</a>.</p>',
        '<p><a href="https://blog.example/p/#comment-201">サビーネ</a> への返信。</p>',
    ],
)
def test_translated_in_reply_to_paragraph_gives_the_parent_and_leaves_the_text(prefix: str) -> None:
    result = extract_feed(rss_item(f"{prefix}\n<p>Danke!</p>"), "https://blog.example/p/feed/")

    assert [(m.external_key, m.parent_key, m.text) for m in result.mentions] == [
        ("comment-202", "comment-201", "<p>Danke!</p>")
    ]


@pytest.mark.parametrize(
    "content",
    [
        '<p>Siehe <a href="https://andere.example/test">diesen Test</a>, der ist ausführlicher.</p>',
        '<p>Als Antwort auf <a href="https://blog.example/p/#comment-201">Sabine</a>.</p>',
    ],
)
def test_first_paragraph_is_kept_unless_it_is_a_reply_link_followed_by_words(content: str) -> None:
    result = extract_feed(rss_item(content), "https://blog.example/p/feed/")

    assert [(m.parent_key, m.text) for m in result.mentions] == [(None, content)]


def test_atom_comment_feed_threading_gives_parents() -> None:
    result = extract_feed(feed("comments-atom.xml"), f"{BASE}/feeds/comments-atom.xml")

    assert result.error is None
    assert [(m.external_key, m.parent_key, m.published) for m in result.mentions] == [
        ("comment-106", "comment-104", "2026-03-14T19:02:00Z"),
        ("comment-105", "comment-104", "2026-03-13T10:30:00Z"),
        ("comment-104", None, "2026-03-13T08:15:00Z"),
        ("comment-103", "comment-102", "2026-03-12T14:20:00Z"),
        ("comment-102", "comment-101", "2026-03-12T11:05:00Z"),
        ("comment-101", None, "2026-03-12T09:41:00Z"),
    ]
    assert {m.found_by for m in result.mentions} == {"atom"}
    # xml:lang on the feed is the site's language, not each commenter's.
    assert {m.language for m in result.mentions} == {None}


def test_atom_threading_to_another_entry_of_a_non_wordpress_feed() -> None:
    atom = b"""<?xml version="1.0" encoding="utf-8"?>
    <feed xmlns="http://www.w3.org/2005/Atom" xmlns:thr="http://purl.org/syndication/thread/1.0">
      <title>Comments</title><id>tag:blog.example,2026:post-7/comments</id>
      <entry><id>tag:blog.example,2026:c1</id><title>c1</title><updated>2026-03-01T10:00:00Z</updated>
        <author><name>Ann</name></author><content type="text">First!</content>
        <thr:in-reply-to ref="tag:blog.example,2026:post-7"/></entry>
      <entry><id>tag:blog.example,2026:c2</id><title>c2</title><updated>2026-03-01T11:00:00Z</updated>
        <author><name>Bo</name></author><content type="text">Second.</content>
        <thr:in-reply-to ref="tag:blog.example,2026:c1"/></entry>
    </feed>"""

    result = extract_feed(atom, "https://blog.example/post-7/comments.atom")

    assert [(m.external_key, m.parent_key, m.author, m.text) for m in result.mentions] == [
        ("tag:blog.example,2026:c1", None, "Ann", "First!"),
        ("tag:blog.example,2026:c2", "tag:blog.example,2026:c1", "Bo", "Second."),
    ]
    assert {m.kind for m in result.mentions} == {"comment"}


def test_posts_feed_items_are_posts_that_point_at_their_comment_feeds() -> None:
    url = f"{BASE}/feeds/blog-rss.xml"
    result = extract_feed(feed("blog-rss.xml"), url)

    assert result.error is None
    assert [(m.kind, m.external_key, m.title) for m in result.mentions] == [
        ("post", "https://blog.acme.example/?p=42", "Our new kettle"),
        ("post", "https://blog.acme.example/?p=37", "How to descale a kettle in five minutes"),
        ("post", "https://blog.acme.example/?p=31", "Kettle 2 launch event: the recording"),
    ]
    assert discover_comment_feeds(feed("blog-rss.xml"), url) == [
        f"{BASE}/feeds/comments-rss.xml",
        f"{BASE}/2026/02/descaling-guide/feed/",
        f"{BASE}/2026/01/launch-event/feed/",
    ]


def test_truncated_feed_keeps_its_complete_entries_and_says_what_is_wrong() -> None:
    result = extract_feed(feed("broken.xml"), f"{BASE}/feeds/broken.xml")

    assert [m.external_key for m in result.mentions] == ["comment-106", "comment-105", "comment-104"]
    assert result.mentions[2].text == (
        "<p>Mine stopped switching off automatically after three weeks. The water keeps boiling until "
        "I pull the plug. Not great for a kettle that costs &#8364;89.</p>"
    )
    assert not result.ok
    assert result.error is not None
    assert "unclosed CDATA section" in result.error
    assert "1 incomplete entry dropped" in result.error


def test_html_page_given_as_a_feed_is_reported_not_a_feed() -> None:
    result = extract_feed(page("post-nested.html"), f"{BASE}/blog/post-nested.html")

    assert result.mentions == []
    assert result.error is not None
    assert result.error.startswith("not a feed")


# --- Feed discovery -------------------------------------------------------------------------


def test_discovers_the_post_and_site_comment_feeds_but_not_the_posts_feed() -> None:
    permalink = "https://blog.acme.example/2026/03/our-new-kettle/"

    assert discover_comment_feeds(page("post-nested.html"), permalink) == [
        "https://blog.acme.example/comments/feed/",
        "https://blog.acme.example/2026/03/our-new-kettle/feed/",
    ]
    assert discover_comment_feeds(page("post-nested.html"), f"{BASE}/blog/post-nested.html") == [
        f"{BASE}/comments/feed/",
        f"{BASE}/blog/feed/",
    ]


@pytest.mark.parametrize("name", ["post-de.html", "post-fr.html"])
def test_discovers_comment_feeds_of_translated_wordpress_pages(name: str) -> None:
    assert discover_comment_feeds(page(name), "https://blog.example/2026/03/wasserkocher/") == [
        "https://blog.example/comments/feed/",
        "https://blog.example/2026/03/wasserkocher/feed/",
    ]


def test_discovery_goes_by_wordpress_url_shapes_not_feed_titles() -> None:
    # Polish titles ("Kanał z komentarzami") that no title hint knows: only URL shapes can tell.
    links = [
        ("Blog &raquo; Kanał", "/feed/"),
        ("Blog &raquo; Kanał z komentarzami", "/comments/feed/"),
        ("Blog &raquo; Czajnik &raquo; Kanał z komentarzami", "feed/"),
        ("Blog &raquo; Kanał kategorii Sprzęt", "/kategoria/sprzet/feed/"),
        ("x", "/?feed=rss2&amp;p=42"),
    ]
    head = "\n".join(
        f'<link rel="alternate" type="application/rss+xml" title="{title}" href="{href}" />'
        for title, href in links
    )
    single = f"<html><head>{head}</head><body class='post-template-default single postid-42'></body></html>"
    archive = f"<html><head>{head}</head><body class='archive category'></body></html>"

    assert discover_comment_feeds(single, "https://blog.example/2026/03/czajnik/") == [
        "https://blog.example/comments/feed/",
        "https://blog.example/2026/03/czajnik/feed/",
        "https://blog.example/?feed=rss2&p=42",
    ]
    assert discover_comment_feeds(archive, "https://blog.example/kategoria/sprzet/") == [
        "https://blog.example/comments/feed/",
    ]


def test_discovers_atom_replies_links() -> None:
    atom = b"""<?xml version="1.0" encoding="UTF-8"?>
    <feed xmlns="http://www.w3.org/2005/Atom" xmlns:thr="http://purl.org/syndication/thread/1.0">
      <title>Blog</title>
      <entry><title>Post</title><id>https://blog.example/?p=42</id>
        <link rel="alternate" type="text/html" href="https://blog.example/2026/03/post/"/>
        <link rel="replies" type="text/html" href="/2026/03/post/#comments" thr:count="2"/>
        <link rel="replies" type="application/atom+xml" href="/2026/03/post/feed/atom/" thr:count="2"/>
      </entry>
    </feed>"""

    assert discover_comment_feeds(atom, "https://blog.example/feed/atom/") == [
        "https://blog.example/2026/03/post/feed/atom/"
    ]


def test_pages_without_comment_feeds_discover_nothing() -> None:
    assert discover_comment_feeds(page("post-sv.html"), f"{BASE}/blog/post-sv.html") == []
    assert discover_comment_feeds(feed("comments-rss.xml"), f"{BASE}/feeds/comments-rss.xml") == []


# --- Keys and garbage -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "key"),
    [
        ("https://blog.example/2026/03/post/#comment-123", "comment-123"),
        ("https://blog.example/?p=42#comment-123", "comment-123"),
        ("https://blog.example/2026/03/post/comment-page-2/#comment-7", "comment-7"),
        ("#comment-5", "comment-5"),
        ("li-comment-5", "comment-5"),
        ("div-comment-5", "comment-5"),
        ("https://blog.example/?p=42", None),
        ("https://blog.example/post/#comments", None),
        ("https://blog.example/post/#comment-form", None),
        ("tag:blog.example,2026:c1", None),
        ("", None),
        (None, None),
    ],
)
def test_wordpress_comment_key(ref: str | None, key: str | None) -> None:
    assert wordpress_comment_key(ref) == key


_rng = random.Random(20260312)
GARBAGE: list[str | bytes] = [
    b"",
    "",
    b"   \n\t ",
    b"\x00\x00\x00",
    b"\xff\xfe\x00<\x00h\x00t\x00m\x00l",
    bytes(_rng.randrange(256) for _ in range(4096)),
    "<<<<>>>><li id='comment-1' class='comment'><div class='comment-content'>",
    "<html><body>" + "<div>" * 5000 + "deep" + "</div>" * 10,
    '<li id="comment-x"><ol class="children"><li id="comment-">',
    '<?xml version="1.0" encoding="bogus-enc"?><rss version="2.0"><channel><item><title>x</item>',
    b"<rss><channel><item><guid>#comment-1</guid><description>ok</description></item>",
    '<feed xmlns="http://www.w3.org/2005/Atom"><entry><thr:in-reply-to ref="x"/></entry>',
    "<html><head><base href='http://[::1'></head><body><li id='comment-3'><div class='comment-body'>hi",
    page("post-nested.html")[:9000],
]


@pytest.mark.parametrize("body", GARBAGE, ids=lambda b: repr(b[:24]))
def test_garbage_input_never_raises(body: str | bytes) -> None:
    comments = extract_comments(body, "https://blog.example/post/")
    assert isinstance(comments, list)
    raw = body.encode("utf-8") if isinstance(body, str) else body
    result = extract_feed(raw, "https://blog.example/feed/")
    assert isinstance(result, FeedResult)
    assert isinstance(result.mentions, list)
    assert isinstance(discover_comment_feeds(body, "https://blog.example/post/"), list)
