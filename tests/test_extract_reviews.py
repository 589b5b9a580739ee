"""schema.org reviews from JSON-LD, Microdata and RDFa (earful.spiders.structured).

The fixture pages in tests/data/site/reviews/ copy the markup of real sites (a WooCommerce
product page, a French restaurant guide, a bookshop, a Trustpilot-like listing, a small
business's hand-typed JSON-LD); their links are relative because a local HTTP server serves
them to the spider tests too. Values are asserted raw: normalisation is the pipelines' job.
"""

from __future__ import annotations

import logging
import random
import re
import time
from pathlib import Path

import extruct  # type: ignore[import-untyped]
import pytest

from earful.spiders.items import Mention
from earful.spiders.structured import AggregateRating, extract_aggregate_ratings, extract_reviews

PAGES = Path(__file__).parent / "data" / "site" / "reviews"
BASE = "https://reviews.example/reviews/"


def page(name: str) -> bytes:
    return (PAGES / name).read_bytes()


def reviews_of(name: str) -> list[Mention]:
    return extract_reviews(page(name), BASE + name)


def review(**fields: object) -> Mention:
    return Mention(kind="review", **fields)  # type: ignore[arg-type]


def jsonld_page(*scripts: str, body: str = "") -> str:
    blocks = "\n".join(f'<script type="application/ld+json">{script}</script>' for script in scripts)
    return f"<!DOCTYPE html><html><head><title>t</title>{blocks}</head><body>{body}</body></html>"


# -- the fixture pages -----------------------------------------------------------------------


def test_product_page_json_ld_reviews_are_extracted_with_raw_values() -> None:
    url = BASE + "product-jsonld.html"
    assert reviews_of("product-jsonld.html") == [
        review(
            text="Warm &amp; light, the fit is tr&egrave;s &eacute;l&eacute;gant. Sleeves run long. "
            "<script>alert(1)</script>",
            url=url,
            author="Dana K.",
            published="2025-11-03T09:14:27+00:00",
            rating="4",
            rating_best="5",
            rating_worst="1",
            found_by="json-ld",
        ),
        review(
            text="Sehr angenehmes Material, kratzt überhaupt nicht. Nach drei Wäschen noch wie neu.",
            url=url,
            title="Top Qualität",
            author="Jürgen Weiß",
            published="2025-12-01T18:02:11+01:00",
            rating="5",
            rating_best="5",
            rating_worst="1",
            language="de",
            found_by="json-ld",
        ),
        review(
            text="Good hoodie for the price, the zipper feels a bit cheap.",
            url=url,
            title="Decent, but the zipper",
            author="Sam",
            published="2025-12-20",
            rating="4,5",
            rating_best="10",
            found_by="json-ld",
        ),
    ]


def test_entities_and_script_tags_in_a_review_body_are_left_for_the_pipeline() -> None:
    text = reviews_of("product-jsonld.html")[0].text
    assert text is not None
    assert "&amp;" in text
    assert "&eacute;l&eacute;gant" in text
    assert text.endswith("<script>alert(1)</script>")


def test_a_broken_json_ld_script_loses_only_itself() -> None:
    # product-jsonld.html has a Yoast graph, an Organization block with an unescaped quote
    # (its review is lost with it) and WooCommerce's Product block.
    reviews = reviews_of("product-jsonld.html")
    assert [m.author for m in reviews] == ["Dana K.", "Jürgen Weiß", "Sam"]
    assert all("broken block" not in (m.text or "") for m in reviews)


def test_extruct_alone_drops_every_json_ld_block_when_one_is_broken() -> None:
    """Why structured.py parses JSON-LD itself: extruct parses all scripts in one go.

    If extruct ever keeps the valid blocks, this test fails and the own parser can go.
    """
    data = extruct.extract(page("product-jsonld.html"), base_url=BASE, syntaxes=["json-ld"], errors="ignore")
    assert "json-ld" not in data


def test_restaurant_microdata_reviews_are_extracted_and_the_json_ld_copy_wins() -> None:
    url = BASE + "restaurant-microdata.html"
    assert reviews_of("restaurant-microdata.html") == [
        # In the SEO module's JSON-LD and in the Microdata: returned once, from the JSON-LD,
        # with the permalink (which only the Microdata has) filled in.
        review(
            text="Quenelle de brochet fondante, sauce Nantua parfaite et un saint-marcellin bien coulant. "
            "Service rapide et souriant, même un samedi soir.",
            external_key=url + "#avis-5521",
            url=url + "#avis-5521",
            title="Un vrai bouchon, sans chichis",
            author="Camille D.",
            published="2025-09-14T21:47:00+02:00",
            rating="5",
            rating_best="5",
            rating_worst="1",
            language="fr",
            found_by="json-ld",
        ),
        review(
            text="Le tablier de sapeur était bon, mais la salle est très bruyante et on attend 40 minutes "
            "entre les plats. Dommage.",
            external_key=url + "#avis-5498",
            url=url + "#avis-5498",
            title="Bon mais bruyant",
            author="Hélène Marchand",
            published="2025-08-30",
            rating="3",
            rating_best="5",
            rating_worst="1",
            language="fr",
            found_by="microdata",
        ),
        review(
            text="Accueil glacial. Les œufs en meurette étaient froids.",
            url=url,
            author="Jean-Luc",
            published="2025-08-02",
            rating="2",
            found_by="microdata",
        ),
    ]


def test_microdata_alone_gives_the_same_reviews() -> None:
    url = BASE + "restaurant-microdata.html"
    reviews = extract_reviews(page("restaurant-microdata.html"), url, syntaxes=["microdata"])
    assert [(m.author, m.published, m.found_by) for m in reviews] == [
        ("Camille D.", "2025-09-14", "microdata"),
        ("Hélène Marchand", "2025-08-30", "microdata"),
        ("Jean-Luc", "2025-08-02", "microdata"),
    ]
    # extruct collapses the whitespace of a Microdata text (the <p> spans two source lines).
    assert reviews[0].text == (
        "Quenelle de brochet fondante, sauce Nantua parfaite et un saint-marcellin bien coulant. "
        "Service rapide et souriant, même un samedi soir."
    )


def test_book_rdfa_reviews_are_extracted_in_document_order() -> None:
    url = BASE + "book-rdfa.html"
    assert reviews_of("book-rdfa.html") == [
        review(
            text="I read it in two winter evenings. The chapters on fog signals are the best thing I have "
            "read this year.",
            external_key=url + "#review-77",
            url=url,
            title="Quiet, salt-stung and wonderful",
            author="Oona Lehtinen",
            published="2025-02-11",
            rating="5",
            rating_best="5",
            rating_worst="1",
            found_by="rdfa",
        ),
        review(
            # A blank node: no key, the pipeline derives one.
            text="Lovely prose. The middle third drags, and I wanted more of the keeper's daughter.",
            url=url,
            title="Pretty, but slow",
            author="Marta",
            # <time property datetime>: the datetime, not the text "2 March 2025".
            published="2025-03-02",
            rating="4",
            found_by="rdfa",
        ),
    ]


def test_listing_pages_give_three_reviews_each_with_stable_keys() -> None:
    keys = []
    for number in (1, 2, 3):
        reviews = reviews_of(f"listing-{number}.html")
        assert len(reviews) == 3
        assert all(m.found_by == "json-ld" and m.rating_best == "5" for m in reviews)
        keys += [m.external_key for m in reviews]
    assert keys == [f"{BASE}listing-{(n - 101) // 3 + 1}.html#review-{n}" for n in range(101, 110)]


def test_listing_graph_reviews_resolve_references() -> None:
    # listing-1.html: a flat @graph; the Organization lists its reviews by @id, each review
    # points back through itemReviewed, one author is a Person node referenced by @id.
    url = BASE + "listing-1.html"
    assert reviews_of("listing-1.html")[1] == review(
        text="Bestellung kam nach zwei Tagen, alles bestens. Gerne wieder!",
        external_key=url + "#review-102",
        url=url,
        title="Schnelle Lieferung",
        author="Marco Weber",
        published="2026-01-10T17:05:41.000Z",
        rating="5",
        rating_best="5",
        rating_worst="1",
        language="de",
        found_by="json-ld",
    )


def test_a_review_url_is_its_url_and_the_id_stays_its_key() -> None:
    olivier = reviews_of("listing-2.html")[1]
    assert olivier.author == "Olivier"
    assert olivier.url == BASE + "review.html?id=105"
    assert olivier.external_key == BASE + "listing-2.html#review-105"
    assert [m.author for m in reviews_of("listing-3.html")] == ["Bea", "Jonas Berg", "Chiara"]


def test_listing_fixtures_chain_pages_with_rel_next() -> None:
    # For the crawl tests: a <link rel="next"> in the head and a WordPress-style pagination nav.
    for number, following in ((1, 2), (2, 3)):
        html = page(f"listing-{number}.html").decode()
        assert f'<link rel="next" href="listing-{following}.html">' in html
        assert f'<a class="next page-numbers" rel="next" href="listing-{following}.html">' in html
    assert 'rel="next"' not in page("listing-3.html").decode()


def test_reviews_without_date_with_an_out_of_range_rating_or_empty_text_are_kept_raw() -> None:
    # The page's JSON-LD is hand-typed: wrapped in <!-- -->, with // comments and trailing commas.
    url = BASE + "no-date-and-bad-rating.html"
    assert reviews_of("no-date-and-bad-rating.html") == [
        review(
            text="Fixed our boiler on a Sunday morning. Fair price, tidy work.",  # its "description"
            url=url,
            author="Tom B.",
            rating="5",
            found_by="json-ld",
        ),
        review(
            text="Seven stars if I could!",
            url=url,
            author="Anna",
            published="2025-06-03",
            rating=7,
            rating_best=5,
            found_by="json-ld",
        ),
        review(
            text=None,  # "reviewBody": ""
            url=url,
            author="R. Okafor",
            published="3 July 2025",
            rating="1",
            rating_best="5",
            rating_worst="1",
            found_by="json-ld",
        ),
    ]


def test_extraction_does_not_depend_on_class_names() -> None:
    for name in ("product-jsonld.html", "restaurant-microdata.html", "book-rdfa.html", "listing-1.html"):
        html = page(name).decode()
        renamed = re.sub(r'\sclass=(["\']).*?\1', ' class="x"', html)
        assert renamed != html
        assert extract_reviews(renamed, BASE + name) == reviews_of(name)


# -- aggregate ratings -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "product-jsonld.html",
            [AggregateRating("Merino Trail Hoodie", "4.33", None, None, 3, "Product", "json-ld")],
        ),
        (
            # In JSON-LD ("4.3") and in Microdata ("4,3"): once, from the JSON-LD.
            "restaurant-microdata.html",
            [AggregateRating("Le Petit Zinc", "4.3", "5", "1", "128", "Restaurant", "json-ld")],
        ),
        (
            "book-rdfa.html",
            [AggregateRating("The Lighthouse Keeper's Almanac", "4.5", "5", None, "2", "Book", "rdfa")],
        ),
        (
            "listing-1.html",
            [AggregateRating("Globex Corporation", "3.3", "5", "1", "9", "Organization", "json-ld")],
        ),
        ("no-date-and-bad-rating.html", []),
    ],
)
def test_aggregate_ratings_name_the_rated_item(name: str, expected: list[AggregateRating]) -> None:
    assert extract_aggregate_ratings(page(name), BASE + name) == expected


def test_a_top_level_aggregate_rating_takes_its_name_from_item_reviewed() -> None:
    html = jsonld_page(
        '{"@context": "https://schema.org", "@type": "AggregateRating", "ratingValue": 4,'
        ' "ratingCount": 20, "itemReviewed": {"@type": "Hotel", "name": "Hotel Ostsee"}}'
    )
    assert extract_aggregate_ratings(html, BASE) == [
        AggregateRating("Hotel Ostsee", 4, None, None, 20, "Hotel", "json-ld")
    ]


# -- JSON-LD shapes --------------------------------------------------------------------------


def test_review_subtypes_prefixed_terms_and_untyped_nested_reviews_are_found() -> None:
    html = jsonld_page(
        '{"@context": "https://schema.org", "@type": "SoftwareApplication", "name": "Tally",'
        ' "reviews": [{"author": "Ana", "reviewBody": "untyped, under reviews"}]}',
        '{"@context": {"schema": "http://schema.org/"}, "@type": "schema:UserReview",'
        ' "schema:author": {"@type": "schema:Person", "schema:name": "Ben"},'
        ' "schema:reviewBody": "prefixed terms"}',
        '{"@type": "http://schema.org/CriticReview", "http://schema.org/author": "Cy",'
        ' "http://schema.org/reviewBody": [{"@value": "expanded form"}]}',
        '{"@context": "https://schema.org", "@type": "ClaimReview", "reviewBody": "a fact check"}',
    )
    assert [(m.author, m.text) for m in extract_reviews(html, BASE)] == [
        ("Ana", "untyped, under reviews"),
        ("Ben", "prefixed terms"),
        ("Cy", "expanded form"),
    ]


def test_the_same_review_in_two_json_ld_blocks_is_returned_once() -> None:
    # WooCommerce and an SEO plugin both describing the product.
    product = (
        '{"@context": "https://schema.org", "@type": "Product", "name": "Kettle", "review": '
        '{"@type": "Review", "author": {"@type": "Person", "name": "Ida"}, "datePublished": "%s",'
        ' "reviewBody": "Boils fast.", "reviewRating": {"@type": "Rating", "ratingValue": "5"}}}'
    )
    html = jsonld_page(product % "2025-01-02T10:00:00+00:00", product % "2025-01-02")
    assert [(m.author, m.published) for m in extract_reviews(html, BASE)] == [
        ("Ida", "2025-01-02T10:00:00+00:00")
    ]


def test_identical_texts_on_different_days_are_different_reviews() -> None:
    review_json = '{"@type": "Review", "author": "Jo", "datePublished": "%s", "reviewBody": "Great!"}'
    html = jsonld_page(f"[{review_json % '2025-01-02'}, {review_json % '2025-03-04'}]")
    assert [m.published for m in extract_reviews(html, BASE)] == ["2025-01-02", "2025-03-04"]


def test_a_review_url_that_is_the_page_is_no_key() -> None:
    body = "".join(
        f'<div itemprop="review" itemscope itemtype="https://schema.org/Review">'
        f'<span itemprop="author">{author}</span><link itemprop="url" href="page.html">'
        f'<p itemprop="reviewBody">{text}</p></div>'
        for author, text in (("Al", "one"), ("Bo", "two"))
    )
    html = f'<html><body><div itemscope itemtype="https://schema.org/Product">{body}</div></body></html>'
    reviews = extract_reviews(html, BASE + "page.html")
    assert [(m.author, m.external_key, m.url) for m in reviews] == [
        ("Al", None, BASE + "page.html"),
        ("Bo", None, BASE + "page.html"),
    ]


@pytest.mark.parametrize(
    "script",
    [
        "<!--\n%s\n-->",
        "//<![CDATA[\n%s\n//]]>",
        "/* added by the theme */ %s ;",
        "%s\n%s",  # two documents in one script
    ],
)
def test_sloppy_json_ld_is_read_leniently(script: str) -> None:
    document = '{"@context": "https://schema.org", "@type": "Review", "author": "Lu", "reviewBody": "ok",}'
    html = jsonld_page(script.replace("%s", document))
    assert [(m.author, m.text) for m in extract_reviews(html, BASE)] == [("Lu", "ok")]


def test_broken_json_ld_does_not_lose_microdata_or_rdfa() -> None:
    body = (
        '<div itemscope itemtype="https://schema.org/Review"><span itemprop="author">Mia</span>'
        '<p itemprop="reviewBody">microdata</p></div>'
        '<div vocab="https://schema.org/" typeof="Review"><span property="author">Noa</span>'
        '<p property="reviewBody">rdfa</p></div>'
    )
    html = jsonld_page('{"@type": "Review", "reviewBody": "unterminated', body=body)
    assert [(m.author, m.found_by) for m in extract_reviews(html, BASE)] == [
        ("Mia", "microdata"),
        ("Noa", "rdfa"),
    ]


# -- encodings and garbage -------------------------------------------------------------------


def test_cp1252_bytes_declared_utf8_are_read_as_cp1252() -> None:
    """A page typed on Windows, declared utf-8 by its template: the invalid UTF-8 bytes are
    read as windows-1252, so 'café' comes back whole (not 'caf\\ufffd'), and the valid UTF-8
    elsewhere on the page stays as it is."""
    html = (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Café</title>'
        '<script type="application/ld+json">{"@type": "Review", "author": "Zoë",'
        ' "reviewBody": "Le café était froid – 3 €"}</script></head><body></body></html>'
    )
    body = html.encode("cp1252")
    for encoding in (None, "utf-8"):
        [found] = extract_reviews(body, BASE, encoding=encoding)
        assert (found.author, found.text) == ("Zoë", "Le café était froid – 3 €")
    mixed = body.replace("Zoë".encode("cp1252"), "Zoë".encode())
    [found] = extract_reviews(mixed, BASE)
    assert (found.author, found.text) == ("Zoë", "Le café était froid – 3 €")


def test_the_http_charset_wins_over_a_wrong_meta_charset() -> None:
    html = (
        '<html><head><meta charset="iso-8859-1"><script type="application/ld+json">'
        '{"@type": "Review", "author": "Zoë", "reviewBody": "café"}</script></head></html>'
    )
    [declared] = extract_reviews(html.encode(), BASE)
    assert declared.text == "cafÃ©"  # believed the page: mojibake, no crash
    [from_header] = extract_reviews(html.encode(), BASE, encoding="utf-8")
    assert from_header.text == "café"


def _garbage() -> list[str | bytes]:
    noise = random.Random(7)
    return [
        "",
        b"",
        "   \n\t ",
        b"\x00\x01\x02\xff\xfe" * 200,
        bytes(noise.randrange(256) for _ in range(100_000)),
        "<<<>>>&&&;;;",
        "<html><body>" + "<div>" * 20_000 + "</body></html>",
        "<div itemscope itemtype='https://schema.org/Review'>" * 3_000,
        "<div vocab='https://schema.org/' typeof='Review'>" * 3_000,
        jsonld_page("[" * 100_000),
        jsonld_page("42", "null", '"a string"', "[1, [2], {}]", ""),
        jsonld_page(
            '{"@type": 5, "@id": 7, "review": [null, 3, "x", {"@id": 9}], "aggregateRating": "4"}',
            '{"@type": "Review", "author": 5, "reviewRating": [], "reviewBody": {"a": 1},'
            ' "datePublished": [null], "url": 4, "inLanguage": {"@id": "_:b0"}}',
            '{"@type": "Review", "@id": "http://[::1", "url": "http://[bad", "reviewBody": "x"}',
            '{"@graph": {"@graph": {"@type": "AggregateRating", "ratingValue": {}}}}',
        ),
        '<html><body><div itemscope itemtype="https://schema.org/Review" itemref="a b c">'
        '<span itemprop="reviewRating" itemscope itemref="x"></span></div></body></html>',
        "<?xml version='1.0' encoding='utf-8'?><html><body>\x00\x0b itemscope typeof ld+json</body></html>",
    ]


@pytest.mark.parametrize("body", _garbage(), ids=lambda body: repr(body[:24]))
def test_garbage_input_never_raises(body: str | bytes, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        reviews = extract_reviews(body, BASE)
        ratings = extract_aggregate_ratings(body, BASE)
    assert isinstance(reviews, list)
    assert isinstance(ratings, list)
    # Handled where it happens, not by the last-resort guard (which logs at ERROR).
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


def test_a_five_megabyte_page_is_read_in_well_under_a_few_seconds() -> None:
    filler = (
        '<div class="row"><div class="col"><span>Lorem ipsum dolor sit amet</span></div></div>\n' * 60_000
    )
    rdfa = (
        '<div vocab="https://schema.org/" typeof="Review"><span property="author">Ola</span>'
        '<p property="reviewBody">at the very end</p></div>'
    )
    html = page("restaurant-microdata.html").decode().replace("</main>", filler + rdfa + "</main>")
    assert len(html) > 5_000_000
    started = time.perf_counter()
    reviews = extract_reviews(html.encode(), BASE + "restaurant-microdata.html")
    elapsed = time.perf_counter() - started
    assert [m.author for m in reviews] == ["Camille D.", "Hélène Marchand", "Jean-Luc", "Ola"]
    assert elapsed < 3.0, f"{elapsed:.2f} s"
