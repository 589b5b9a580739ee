"""Alert channels over real sockets: an HTTP receiver in a thread (Slack and webhook posts), an
SMTP server (aiosmtpd), receivers that are down or answer 503, and the bookkeeping in
``alert.deliveries`` on both databases.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from earful.pipeline.config import Config, EmailNotifier, load_config_text
from earful.pipeline.db import Database
from earful.pipeline.notify import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    EmailChannel,
    Example,
    Message,
    SlackChannel,
    WebhookChannel,
    channel_for,
    deliver,
    deliver_alerts,
    initial_deliveries,
    verify_signature,
)
from earful.pipeline.schema import Alert

SECRET = "whsec-0123456789abcdef"
SLACK_TOKEN = "T0000/B0000/xoxb-very-secret-token"
SMTP_PASSWORD = "smtp-pass-s3cret"

MESSAGE = Message(
    key="spike:1:delivery:2026-11-25T14Z",
    title="Earful: negative spike for Acme about delivery",
    lines=("Acme: 25 negative mentions about delivery, 1.0 expected", "Sources: shop <3> & co"),
    examples=(
        Example(
            "Never arrived <!channel> <script>alert(1)</script> & more", "https://shop.example/r/1?a=1&b=2"
        ),
        Example("Evil link", "javascript:alert(1)", source="blog", when="2026-11-25 14:05"),
    ),
    data={"brand": "Acme", "topic": "delivery", "observed": 25},
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and answers with the statuses
    queued in ``answers`` (then 200). ``start`` may be called late: until then the port is
    closed, as a receiver that is down."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[Request] = []
        self.answers: list[int] = []
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        if self.server is not None:
            return
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = receiver.answers.pop(0) if receiver.answers else 200
                if status == 200:
                    receiver.requests.append(Request(self.path, dict(self.headers.items()), body))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def __enter__(self) -> Receiver:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[Any] = []
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login, data.password))
        return AuthResult(success=data.password == SMTP_PASSWORD.encode(), handled=False)


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(
        box, hostname="127.0.0.1", port=port, auth_require_tls=False, authenticator=box.authenticate
    )
    controller.start()
    yield box, port
    controller.stop()


def no_sleep(seconds: float) -> None:
    pass


# --------------------------------------------------------------------------- channels


def test_email_arrives_as_text_and_escaped_html(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    notifier = EmailNotifier.model_validate(
        {
            "kind": "email",
            "name": "team",
            "host": "127.0.0.1",
            "port": port,
            "starttls": False,
            "username": "earful",
            "password": SMTP_PASSWORD,
            "sender": "earful@example.com",
            "recipients": ["a@example.com", "b@example.com"],
        }
    )
    outcome = deliver(channel_for(notifier), MESSAGE, attempts=1)
    assert outcome.status == "sent", outcome.error
    [mail] = box.messages
    assert mail["Subject"] == "[Earful] negative spike for Acme about delivery"
    assert mail["From"] == "earful@example.com"
    assert mail["To"] == "a@example.com, b@example.com"
    assert mail["X-Earful-Alert"] == MESSAGE.key
    assert mail["Message-ID"]
    assert mail["Date"]
    assert box.envelopes[0].rcpt_tos == ["a@example.com", "b@example.com"]
    assert box.logins == [(b"earful", SMTP_PASSWORD.encode())]
    plain = mail.get_body(("plain",))
    html_part = mail.get_body(("html",))
    assert plain is not None
    assert html_part is not None
    text = plain.get_content()
    assert "<script>alert(1)</script>" in text  # plain text needs no escaping
    assert "https://shop.example/r/1?a=1&b=2" in text
    assert "javascript:" not in text
    page = html_part.get_content()
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "shop &lt;3&gt; &amp; co" in page
    assert 'href="https://shop.example/r/1?a=1&amp;b=2"' in page
    assert "javascript:" not in page


def test_email_carries_attachments_such_as_the_weekly_report(smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    notifier = EmailNotifier.model_validate(
        {
            "kind": "email",
            "name": "team",
            "host": "127.0.0.1",
            "port": port,
            "starttls": False,
            "sender": "earful@example.com",
            "recipients": ["a@example.com"],
        }
    )
    page = b"<!doctype html><title>Word of mouth: Acme</title><p>158 mentions</p>"
    message = dataclasses.replace(
        MESSAGE, attachments=(("earful-report-acme-2026-W47.html", "text/html", page),)
    )
    assert deliver(channel_for(notifier), message, attempts=1).status == "sent"
    [mail] = box.messages
    [attached] = list(mail.iter_attachments())
    assert attached.get_filename() == "earful-report-acme-2026-W47.html"
    assert attached.get_content_type() == "text/html"
    assert attached.get_payload(decode=True) == page
    assert mail.get_body(("plain",)) is not None  # the summary is still the body


def test_email_with_wrong_password_is_refused_without_retrying(smtp: tuple[Mailbox, int]) -> None:
    _, port = smtp
    channel = EmailChannel(
        EmailNotifier(
            kind="email",
            name="team",
            host="127.0.0.1",
            port=port,
            starttls=False,
            username="earful",
            password="wrong-password-xyz",
            sender="earful@example.com",
            recipients=["a@example.com"],
        )
    )
    outcome = deliver(channel, MESSAGE, attempts=3, sleep=no_sleep)
    assert outcome.status == "pending"
    assert outcome.attempts == 1
    assert outcome.error is not None
    assert "login refused" in outcome.error
    assert "wrong-password-xyz" not in outcome.error


def test_slack_post_escapes_mrkdwn_and_links_only_web_pages(receiver: Receiver) -> None:
    outcome = deliver(SlackChannel("ops", receiver.url + "/services/" + SLACK_TOKEN), MESSAGE)
    assert outcome.status == "sent"
    [request] = receiver.requests
    assert request.path == "/services/" + SLACK_TOKEN
    assert request.headers["Content-Type"] == "application/json"
    body = json.loads(request.body)
    assert body["text"] == "Earful: negative spike for Acme about delivery"
    blocks = json.dumps(body["blocks"])
    assert "<!channel>" not in blocks
    assert "&lt;!channel&gt;" in blocks
    assert "&lt;script&gt;" in blocks
    assert "& more" not in blocks
    assert "&amp; more" in blocks
    assert "<https://shop.example/r/1?a=1&amp;b=2|link>" in blocks
    assert "javascript" not in blocks
    assert body["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Earful: negative spike for Acme about delivery"},
    }


def test_webhook_is_signed_and_a_receiver_can_verify_it(receiver: Receiver) -> None:
    outcome = deliver(WebhookChannel("hook", receiver.url + "/earful", SECRET), MESSAGE)
    assert outcome.status == "sent"
    [request] = receiver.requests
    timestamp, signature = request.headers[TIMESTAMP_HEADER], request.headers[SIGNATURE_HEADER]
    assert signature.startswith("sha256=")
    assert abs(int(timestamp) - time.time()) < 60
    assert verify_signature(SECRET, timestamp, request.body, signature)
    assert not verify_signature("another-secret", timestamp, request.body, signature)
    assert not verify_signature(SECRET, timestamp, request.body + b" ", signature)
    assert not verify_signature(SECRET, str(int(timestamp) + 1), request.body, signature)
    assert not verify_signature(SECRET, timestamp, request.body, signature, now=int(timestamp) + 600)
    body = json.loads(request.body)
    assert body["event"] == "earful.alert"
    assert body["key"] == MESSAGE.key
    assert body["alert"] == MESSAGE.data
    assert request.headers["X-Earful-Delivery"] == MESSAGE.key


def test_unsigned_webhook_has_no_signature(receiver: Receiver) -> None:
    assert deliver(WebhookChannel("hook", receiver.url, None), MESSAGE).status == "sent"
    assert SIGNATURE_HEADER not in receiver.requests[0].headers


def test_503_then_delivered_on_retry_exactly_once(receiver: Receiver) -> None:
    receiver.answers = [503, 503]
    waits: list[float] = []
    outcome = deliver(
        WebhookChannel("hook", receiver.url, SECRET), MESSAGE, attempts=3, backoff_s=0.01, sleep=waits.append
    )
    assert (outcome.status, outcome.attempts) == ("sent", 3)
    assert waits == [0.01, 0.02]  # exponential backoff
    assert len(receiver.requests) == 1


def test_receiver_not_listening_then_delivered_on_retry() -> None:
    late = Receiver()

    def wait(seconds: float) -> None:
        late.start()  # the receiver comes up while we back off

    try:
        outcome = deliver(SlackChannel("ops", late.url + "/x"), MESSAGE, attempts=2, sleep=wait)
    finally:
        late.stop()
    assert (outcome.status, outcome.attempts) == ("sent", 2)
    assert len(late.requests) == 1


def test_client_error_is_not_retried_within_a_run(receiver: Receiver) -> None:
    receiver.answers = [404]
    outcome = deliver(SlackChannel("ops", receiver.url), MESSAGE, attempts=3, sleep=no_sleep)
    assert (outcome.status, outcome.attempts) == ("pending", 1)
    assert outcome.error == "HTTP 404 Not Found"


def test_airflow_connection_supplies_url_and_secret(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = {"conn_type": "http", "host": receiver.url + "/from-airflow", "password": SECRET}
    monkeypatch.setenv("AIRFLOW_CONN_EARFUL_TEST_HOOK", json.dumps(conn))
    config = load_config_text(
        "notifiers:\n  - name: hook\n    kind: webhook\n    conn_id: earful_test_hook\n"
    )
    outcome = deliver(channel_for(config.notifiers[0]), MESSAGE)
    assert outcome.status == "sent", outcome.error
    [request] = receiver.requests
    assert request.path == "/from-airflow"
    assert verify_signature(
        SECRET, request.headers[TIMESTAMP_HEADER], request.body, request.headers[SIGNATURE_HEADER]
    )


def test_notifier_needs_a_url_or_a_connection() -> None:
    from earful.pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match="give url"):
        load_config_text("notifiers:\n  - name: ops\n    kind: slack\n")


# --------------------------------------------------------------------------- bookkeeping


def notifier_config(
    tmp_path: Path, db_url: str, hook_port: int, smtp_port: int, monkeypatch: pytest.MonkeyPatch
) -> Config:
    monkeypatch.setenv("EARFUL_TEST_SLACK", f"http://127.0.0.1:{hook_port}/services/{SLACK_TOKEN}")
    monkeypatch.setenv("EARFUL_TEST_HOOK", f"http://127.0.0.1:{hook_port}/hook")
    monkeypatch.setenv("EARFUL_TEST_SECRET", SECRET)
    monkeypatch.setenv("EARFUL_TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    text = f"""
database:
  url: {db_url!r}
alerts:
  delivery_attempts: 2
  delivery_backoff_s: 0.001
  delivery_timeout_s: 2
notifiers:
  - name: ops-slack
    kind: slack
    url: ${{EARFUL_TEST_SLACK}}
  - name: ops-hook
    kind: webhook
    url: ${{EARFUL_TEST_HOOK}}
    secret: ${{EARFUL_TEST_SECRET}}
  - name: team-mail
    kind: email
    host: 127.0.0.1
    port: {smtp_port}
    starttls: false
    username: earful
    password: ${{EARFUL_TEST_SMTP_PASSWORD}}
    sender: earful@example.com
    recipients: [team@example.com]
"""
    return load_config_text(text, path=tmp_path / "earful.yaml")


def add_alert(db: Database, config: Config, key: str = MESSAGE.key) -> int:
    now = datetime(2026, 11, 25, 14, tzinfo=UTC)
    with db.session() as session:
        alert = Alert(
            dedup_key=key,
            kind="spike",
            window_start=now - timedelta(hours=3),
            window_end=now,
            explanation={"summary": "Acme: 25 negative mentions"},
            deliveries=initial_deliveries(config),
        )
        session.add(alert)
        session.flush()
        return alert.id


def render(alert: Alert) -> Message:
    return Message(key=alert.dedup_key, title="Spike", lines=(str(alert.explanation["summary"]),))


def deliveries(db: Database, alert_id: int) -> dict[str, Any]:
    with db.engine.connect() as conn:
        value = conn.scalar(sa.select(Alert.deliveries).where(Alert.id == alert_id))
    assert isinstance(value, dict)
    return value


def test_channel_down_stays_pending_and_a_later_run_delivers_it_once(
    db: Database,
    tmp_path: Path,
    db_url: str,
    smtp: tuple[Mailbox, int],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    box, smtp_port = smtp
    down = Receiver()  # not started: the webhooks are down
    config = notifier_config(tmp_path, db_url, down.port, smtp_port, monkeypatch)
    alert_id = add_alert(db, config)

    [report] = deliver_alerts(db, config, render, sleep=no_sleep)
    state = deliveries(db, alert_id)
    assert state["team-mail"]["status"] == "sent"
    assert len(box.messages) == 1
    for name in ("ops-slack", "ops-hook"):
        assert state[name]["status"] == "pending"
        assert state[name]["attempts"] == 2
        assert "cannot connect" in state[name]["error"]
    assert {o.channel: o.status for o in report.outcomes} == {
        "ops-slack": "pending",
        "ops-hook": "pending",
        "team-mail": "sent",
    }

    with down:
        deliver_alerts(db, config, render, sleep=no_sleep)
        deliver_alerts(db, config, render, sleep=no_sleep)  # nothing left to send
    state = deliveries(db, alert_id)
    assert {name: entry["status"] for name, entry in state.items()} == dict.fromkeys(state, "sent")
    assert state["ops-hook"]["attempts"] == 3
    assert state["ops-hook"]["error"] is None
    assert sorted(r.path for r in down.requests) == ["/hook", f"/services/{SLACK_TOKEN}"]
    assert len(box.messages) == 1  # e-mail was sent the first time and never again

    # Secrets appear nowhere: not in the logs, not in what is stored.
    stored = json.dumps(state)
    for secret in (SLACK_TOKEN, SECRET, SMTP_PASSWORD, "xoxb"):
        assert secret not in caplog.text
        assert secret not in stored
    assert "ops-slack" in caplog.text  # the notifier's name is what is logged


def test_a_claimed_delivery_is_left_to_the_run_that_claimed_it(
    db: Database,
    tmp_path: Path,
    db_url: str,
    receiver: Receiver,
    smtp: tuple[Mailbox, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    box, smtp_port = smtp
    config = notifier_config(tmp_path, db_url, receiver.port, smtp_port, monkeypatch)
    alert_id = add_alert(db, config)
    now = datetime.now(UTC)
    claimed = {"status": "sending", "attempts": 0, "claimed_at": now.isoformat()}
    stale = {"status": "sending", "attempts": 1, "claimed_at": (now - timedelta(hours=2)).isoformat()}
    sent = {"status": "sent", "attempts": 1}
    with db.engine.begin() as conn:
        conn.execute(
            sa.update(Alert)
            .where(Alert.id == alert_id)
            .values(deliveries={"ops-slack": claimed, "ops-hook": stale, "team-mail": sent})
        )
    [report] = deliver_alerts(db, config, render, sleep=no_sleep)
    assert [o.channel for o in report.outcomes] == ["ops-hook"]  # a crashed run's stale claim
    assert report.skipped == ["ops-slack"]
    assert [r.path for r in receiver.requests] == ["/hook"]
    assert box.messages == []
    assert deliveries(db, alert_id)["ops-slack"]["status"] == "sending"


def test_secrets_stay_out_of_errors_even_when_the_url_is_bad(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for url in (
        f"ftp://example.invalid/{SLACK_TOKEN}",
        f"http://127.0.0.1:1/{SLACK_TOKEN}",
        f"http://[::1/{SLACK_TOKEN}",
    ):
        outcome = deliver(SlackChannel("ops", url), MESSAGE, attempts=2, sleep=no_sleep)
        assert outcome.status == "pending"
        assert outcome.error
        assert SLACK_TOKEN not in outcome.error
    assert SLACK_TOKEN not in caplog.text
