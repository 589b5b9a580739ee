"""The weekly report in a real browser: headless Chromium renders it, and nothing else loads.

Chromium is a Debian package (``/usr/bin/chromium``); the ``chromium`` fixture installs it with
apt-get when it is missing (as root, or through password-less sudo). Where it cannot be
installed the tests are skipped with the reason, except under CI (``$CI`` set), where that is
a failure: CI must render the report.

How "no request but the page itself" is checked, in three layers that do not trust each other:

1. The page is served by a loopback HTTP server started here, which records every request it
   gets; Chromium resolves every other host name to nothing (``--host-resolver-rules``), so
   nothing leaves the machine and the only server that can answer is ours. Its log must hold
   the report and nothing else (the browser's own ``/favicon.ico`` probe is tolerated: it is
   not the page's doing).
2. A request to any other host would fail silently there, so the page's
   Content-Security-Policy (``default-src 'none'``) is relied on to block it, and Chromium
   logs every blocked load as a console message (``--enable-logging=stderr``): there must be
   no console message at all.
3. The DOM Chromium parsed (``--dump-dom``) must hold no element or attribute that fetches
   anything (script, img, link, iframe, src, srcset, a ``url(...)`` in CSS, ...), so the page
   would load nothing even without its policy.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import CONFIG_YAML
from lxml import html as lxml_html  # type: ignore[import-untyped]
from matplotlib import image as mpl_image
from test_report import LONG_WORD, NOW, W47, history, hostile_data, with_settings

from earful.pipeline.config import Config, load_config_text
from earful.pipeline.db import Database
from earful.pipeline.report import write_reports

pytestmark = pytest.mark.timeout(900)  # the first test may install Chromium

WIDTH = 1280
FETCHING_TAGS = ("script", "img", "link", "iframe", "frame", "object", "embed", "video", "audio", "source")
FETCHING_ATTRIBUTES = ("src", "srcset", "poster", "data", "background", "action", "formaction", "ping")


# ------------------------------------------------------------------------------ Chromium


def _install_chromium() -> str:
    """Install Debian's chromium with apt-get; what went wrong, if it did."""
    if shutil.which("apt-get") is None:
        return "there is no apt-get here; install Chromium (/usr/bin/chromium) by hand"
    if os.geteuid() == 0:
        prefix = ["env", "DEBIAN_FRONTEND=noninteractive"]
    elif shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        prefix = ["sudo", "-n", "env", "DEBIAN_FRONTEND=noninteractive"]
    else:
        return "not running as root and sudo asks for a password; run `apt-get install -y chromium` as root"
    for step in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=300", "chromium"],
    ):
        try:
            done = subprocess.run(prefix + step, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            return f"`{' '.join(step)}` took more than 10 minutes"
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return f"`{' '.join(step)}` failed: {' / '.join(tail)}"
    return "apt-get ran, but there is still no chromium on PATH"


@pytest.fixture(scope="session")
def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        problem = _install_chromium()
        found = shutil.which("chromium")
        if found is None:
            reason = f"Chromium is missing and could not be installed: {problem}"
            if os.environ.get("CI"):
                pytest.fail(reason)
            pytest.skip(reason)
    return found


@contextmanager
def serve(folder: Path) -> Iterator[tuple[str, list[str]]]:
    """Serve ``folder`` on 127.0.0.1; yields the base URL and the list of requests seen."""
    seen: list[str] = []

    class Recorder(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def parse_request(self) -> bool:
            ok = super().parse_request()  # sets requestline first, even for a bad request
            seen.append(self.requestline)
            return ok

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Recorder, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def run_chromium(chromium: str, url: str, profile: Path, *action: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-extensions",
            "--no-first-run",
            "--no-default-browser-check",
            f"--user-data-dir={profile}",
            # Every host but ours resolves to nothing: no request can leave the machine.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--enable-logging=stderr",
            "--v=0",
            *action,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def screenshot(chromium: str, page: Path, tmp_path: Path, height: int) -> tuple[np.ndarray, list[str]]:
    png = tmp_path / f"{page.stem}.png"
    with serve(page.parent) as (base, seen):
        done = run_chromium(
            chromium,
            f"{base}/{page.name}",
            tmp_path / "profile",
            f"--screenshot={png}",
            f"--window-size={WIDTH},{height}",
        )
    assert console_messages(done.stderr) == []
    pixels = np.asarray(mpl_image.imread(png))[:, :, :3]
    assert pixels.shape == (height, WIDTH, 3)
    return pixels, seen


def dump_dom(chromium: str, page: Path, tmp_path: Path) -> tuple[Any, list[str]]:
    with serve(page.parent) as (base, seen):
        done = run_chromium(chromium, f"{base}/{page.name}", tmp_path / "profile", "--dump-dom")
    assert console_messages(done.stderr) == []
    return lxml_html.fromstring(done.stdout), seen


def only_the_page_was_requested(seen: list[str], page: Path) -> None:
    requests = [line for line in seen if not line.startswith("GET /favicon.ico ")]
    assert requests == [f"GET /{page.name} HTTP/1.1"], seen


def nothing_fetches(tree: Any) -> None:
    for element in tree.iter():
        if not isinstance(element.tag, str):
            continue
        tag = element.tag.rsplit("}", 1)[-1].lower()
        assert tag not in FETCHING_TAGS, tag
        for name, value in element.attrib.items():
            name = name.rsplit("}", 1)[-1].lower()
            assert name not in FETCHING_ATTRIBUTES, (tag, name, value)
            assert not name.startswith("on"), (tag, name)
            if name == "href":
                assert tag == "a" or value.startswith("#"), (tag, value)
            if name == "style":
                assert "url(" not in value.lower(), value
    for style in tree.iter("style"):
        assert "url(" not in (style.text or "").lower()
        assert "@import" not in (style.text or "").lower()


# ------------------------------------------------------------------------------ reports


def build(folder: Path, data_name: str) -> tuple[Database, Config]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "earful.yaml"
    url = f"sqlite:///{folder / 'earful.sqlite3'}"
    path.write_text(CONFIG_YAML + f"database:\n  url: '{url}'\n", encoding="utf-8")
    config = load_config_text(path.read_text(encoding="utf-8"), path=path)
    db = Database(config.database.url)
    db.upgrade()
    (history() if data_name == "history" else hostile_data()).store(db, config)
    return db, with_settings(config, examples=10)


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pages = {}
    for name in ("history", "hostile"):
        folder = tmp_path_factory.mktemp(name)
        db, config = build(folder, name)
        (written, *_) = write_reports(db, config, week=W47, brand="Acme", out_dir=folder / "out", now=NOW)
        db.dispose()
        pages[name] = written.html
    return pages


# ------------------------------------------------------------------------------ tests


def test_the_report_renders_with_its_chart_and_loads_nothing_else(
    chromium: str, reports: dict[str, Path], tmp_path: Path
) -> None:
    page = reports["history"]
    pixels, seen = screenshot(chromium, page, tmp_path, height=2000)
    only_the_page_was_requested(seen, page)
    assert pixels.std() > 0.05, "the page rendered blank"
    ink = (pixels.max(axis=2) < 0.6).mean()
    assert ink > 0.01, f"too little text or drawing on the page ({ink:.2%} dark pixels)"
    # The chart's lines: the red of the negative share and the green of net sentiment.
    red = (pixels[:, :, 0] > 0.6) & (pixels[:, :, 1] < 0.3) & (pixels[:, :, 2] < 0.3)
    green = (pixels[:, :, 1] > 0.4) & (pixels[:, :, 0] < 0.3) & (pixels[:, :, 2] < 0.4)
    assert red.sum() > 100
    assert green.sum() > 100


def test_the_dom_the_browser_builds_holds_the_figures(
    chromium: str, reports: dict[str, Path], tmp_path: Path
) -> None:
    page = reports["history"]
    tree, seen = dump_dom(chromium, page, tmp_path)
    only_the_page_was_requested(seen, page)
    nothing_fetches(tree)
    text = " ".join(tree.text_content().split())
    assert "Word of mouth: Acme" in text
    assert "47 mentions this week (44 judged, 3 not judged), against 41 the week before." in text
    assert "The brand replied to 4 of 17 negative mentions (24%), after a median of 5.0 h." in text
    assert "delivery" in text
    assert len(tree.xpath("//*[local-name()='svg']//*[local-name()='path']")) > 20


def test_hostile_text_stays_text_in_the_browser(
    chromium: str, reports: dict[str, Path], tmp_path: Path
) -> None:
    page = reports["hostile"]
    tree, seen = dump_dom(chromium, page, tmp_path)
    only_the_page_was_requested(seen, page)
    nothing_fetches(tree)
    assert len(tree.xpath("//style")) == 1
    assert "<script>alert(1)</script>" in tree.text_content()
    assert LONG_WORD[:250] in tree.text_content()  # shown up to the excerpt's length
    # The injected `</style><style>body{display:none}` did not hide the page, and the
    # 5,000-letter word wraps inside the column: nothing is drawn in the right margin.
    pixels, seen = screenshot(chromium, page, tmp_path, height=5000)
    only_the_page_was_requested(seen, page)
    assert pixels.std() > 0.05, "the page rendered blank"
    margin = pixels[:, WIDTH - 60 :, :]
    assert (margin.max(axis=2) < 0.6).sum() == 0, "something overflows the page's column"
