"""A real HTTP server for crawl tests: serves tests/data/site on 127.0.0.1, logs requests.

Like scrapy's tests/mockserver, it simulates bad days on purpose:

* ``/robots.txt`` disallows ``/private/`` (a crawl must never fetch it);
* ``/flaky/<name>?<anything>`` answers 500 the first time and the file ``<name>`` afterwards;
* ``/loop/a`` and ``/loop/b`` redirect to each other forever;
* ``/big.html`` is product-jsonld.html grown to 5 MB;
* ``/cp1252.html`` is cp1252 bytes declared as UTF-8;
* ``/api/hn?...`` serves saved Hacker News search responses by ``page``.

``server.requests`` lists every path requested, in order, so tests can assert what a crawl
fetched and what it did not.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

SITE = Path(__file__).resolve().parent / "data" / "site"
ROBOTS = b"User-agent: *\nDisallow: /private/\n"
TYPES = {".html": "text/html; charset=utf-8", ".xml": "application/xml", ".json": "application/json"}


class SiteServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # Scrapy opens 16 connections at once; the default backlog is 5

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.root = root
        self.requests: list[str] = []
        self.flaky_seen: set[str] = set()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def paths(self) -> list[str]:
        with self.lock:
            return list(self.requests)


class Handler(BaseHTTPRequestHandler):
    server: SiteServer

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def send_body(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.requests.append(self.path)
        parts = urlsplit(self.path)
        path = parts.path
        if path == "/robots.txt":
            return self.send_body(200, ROBOTS, "text/plain")
        if path.startswith("/loop/"):
            self.send_response(302)
            self.send_header("Location", "/loop/b" if path == "/loop/a" else "/loop/a")
            self.end_headers()
            return None
        if path.startswith("/flaky/"):
            name = path[len("/flaky/") :]
            with self.server.lock:  # the query string tells apart tests sharing the server
                first = self.path not in self.server.flaky_seen
                self.server.flaky_seen.add(self.path)
            if first:
                return self.send_body(500, b"<h1>Internal Server Error</h1>", "text/html")
            path = "/" + name
        if path == "/big.html":
            filler = b"<div class='filler'><p>" + b"lorem ipsum " * 40 + b"</p></div>\n"
            product = (SITE / "reviews" / "product-jsonld.html").read_bytes()
            bulk = filler * (5 * 1024 * 1024 // len(filler))
            body = product.replace(b"</body>", bulk + b"</body>", 1)  # 5 MB of markup before the end
            return self.send_body(200, body, "text/html; charset=utf-8")
        if path == "/cp1252.html":
            html = (
                '<html><head><meta charset="utf-8"><script type="application/ld+json">'
                '{"@context":"https://schema.org","@type":"Review","@id":"#cp1252",'
                '"itemReviewed":{"@type":"Product","name":"Kettle"},"author":{"@type":"Person","name":"Zoë"},'
                '"datePublished":"2026-03-01","reviewBody":"Très bon café, prix correct – merci!",'
                '"reviewRating":{"@type":"Rating","ratingValue":"5"}}</script></head><body></body></html>'
            )
            return self.send_body(200, html.encode("cp1252"), "text/html; charset=utf-8")
        if path == "/api/hn":
            page = parse_qs(parts.query).get("page", ["0"])[0]
            file = SITE / "api" / f"hn-page-{page}.json"
            if file.exists():
                return self.send_body(200, file.read_bytes(), "application/json")
            return self.send_body(200, b'{"hits": [], "nbPages": 0, "page": 0}', "application/json")
        file = (self.server.root / path.lstrip("/")).resolve()
        if path.endswith("/"):
            file = file / "index.html"
        if parts.query.startswith("page="):  # listing.html?page=2 -> listing.page-2.html
            file = file.with_name(f"{file.stem}.page-{parts.query[5:]}{file.suffix}")
        if not file.is_relative_to(self.server.root) or not file.is_file():
            return self.send_body(404, b"<h1>Not Found</h1>", "text/html")
        return self.send_body(200, file.read_bytes(), TYPES.get(file.suffix, "application/octet-stream"))


@contextmanager
def serve(root: Path = SITE) -> Iterator[SiteServer]:
    server = SiteServer(root)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
