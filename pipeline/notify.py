"""Delivering alerts: a Slack-compatible webhook, a signed JSON webhook, e-mail over SMTP.

A :class:`Message` says what an alert says, channel-neutral and unescaped; each channel escapes
it for its own format (Slack mrkdwn, HTML), because every mention text comes from the web and is
hostile until shown otherwise. Only ``http(s)`` links become links.

:func:`deliver` sends one message on one channel, retrying with exponential backoff; a channel
that is still down after its attempts gives a ``pending`` outcome with the error, never an
exception. :func:`deliver_alerts` keeps the books in ``alert.deliveries`` (channel name ->
``{status, attempts, error, ...}``): each delivery is claimed (``sending``) before it is sent and
marked ``sent`` or ``pending`` after, with a compare-and-swap on the whole column, so two runs at
once never send the same alert twice on a channel, and a ``pending`` one is retried by every later
run until it is ``sent``::

    outcome = deliver(SlackChannel("ops", url), message, attempts=3, backoff_s=2.0)
    outcome.status, outcome.attempts  # 'sent', 2

Secrets (webhook URLs, which carry a token; signing secrets; SMTP passwords) come from the
config's ``${ENV}`` references or from an Airflow connection (``conn_id``); they are never
logged or stored: logs and ``alert.deliveries`` name the notifier only, and error texts are
scrubbed of every secret of the channel. HTTP goes through :mod:`urllib.request` (it logs
nothing, unlike httpx's INFO request lines, which carry the URL).

A signed webhook carries ``X-Earful-Timestamp`` (Unix seconds) and ``X-Earful-Signature:
sha256=<hex>``, the HMAC-SHA256 under the shared secret of ``<timestamp>.<raw body>``. A receiver
recomputes it over the raw bytes it received, compares in constant time, and refuses a timestamp
more than five minutes off its clock (a replay); ``X-Earful-Delivery`` (the alert's key) lets it
drop a duplicate, as a crash between sending and recording can resend once.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import http.client
import json
import logging
import re
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Literal, Protocol
from urllib.parse import quote, urlsplit

from sqlalchemy import Table, Text, cast, or_, select, update

from earful.pipeline import __version__
from earful.pipeline.config import Config, EmailNotifier, Notifier, SlackNotifier, WebhookNotifier
from earful.pipeline.db import Database
from earful.pipeline.errors import DeliveryError
from earful.pipeline.schema import Alert

logger = logging.getLogger(__name__)

USER_AGENT = f"earful/{__version__} (+https://github.com/earful/earful)"
SIGNATURE_HEADER = "X-Earful-Signature"
TIMESTAMP_HEADER = "X-Earful-Timestamp"
DELIVERY_HEADER = "X-Earful-Delivery"
SIGNATURE_TOLERANCE_S = 300  # what a receiver should accept; see verify_signature

# Length caps: a hostile page must not make a message that a channel refuses.
MAX_TITLE = 150
MAX_LINE = 500
MAX_EXAMPLE = 280
MAX_EXAMPLES = 5
MAX_URL = 2000
MAX_SLACK_SECTION = 2900  # Slack's limit for a section's text is 3000
MAX_ERROR = 300

_ALERT: Table = Alert.__table__  # type: ignore[assignment]
_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

Status = Literal["sent", "pending"]


class DeliveryRefused(DeliveryError):
    """The channel answered, and refused the message (HTTP 4xx, SMTP authentication or
    recipients refused): retrying at once will not help, so the attempts stop early. The
    delivery stays ``pending`` and the next run tries again (after the config is fixed)."""


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class Example:
    """A mention quoted in a message: its text, a link, and where and when it was said."""

    text: str
    url: str | None = None
    source: str | None = None
    when: str | None = None


@dataclass(frozen=True)
class Message:
    """One alert as every channel receives it. All text is raw: the channels escape it.

    ``key`` identifies the alert (its dedup key), so receivers can drop a duplicate; ``data``
    is the structured alert that the generic webhook sends as JSON.
    """

    key: str
    title: str
    lines: tuple[str, ...] = ()
    examples: tuple[Example, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)
    # Files for the e-mail channel (name, MIME type, content), e.g. the weekly report's HTML;
    # the webhook channels send the message without them.
    attachments: tuple[tuple[str, str, bytes], ...] = ()

    def plain(self) -> str:
        """The message as plain text (e-mail, Slack's notification fallback)."""
        out = [_line(self.title, MAX_TITLE), ""]
        out += [_line(line, MAX_LINE) for line in self.lines]
        if self.examples:
            out += ["", "Examples:"]
            for ex in self.examples[:MAX_EXAMPLES]:
                out.append(f"- {_line(ex.text, MAX_EXAMPLE)}")
                meta = ", ".join(_line(v, 80) for v in (ex.source, ex.when) if v)
                link = _safe_url(ex.url)
                if meta or link:
                    out.append("  " + " ".join(p for p in (f"({meta})" if meta else "", link or "") if p))
        return "\n".join(out).strip() + "\n"


def _line(text: str | None, limit: int) -> str:
    """One line of at most ``limit`` characters: control characters and runs of white space
    become one space."""
    text = _SPACE.sub(" ", _CONTROL.sub(" ", text or "")).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _safe_url(url: str | None) -> str | None:
    """``url`` if it is an absolute http(s) URL of sane length (a ``javascript:`` link from a
    hostile page must not become a link), else ``None``."""
    if not url or len(url) > MAX_URL or _CONTROL.search(url) or any(c.isspace() for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


def slack_escape(text: str) -> str:
    """Escape text for Slack mrkdwn: ``&``, ``<`` and ``>`` are its only control characters
    (``<!channel>``, ``<@U123>`` and ``<url|text>`` all start with ``<``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_link(url: str, label: str) -> str:
    # Inside <...|...> a '|' or '>' would end the URL early: percent-encode them.
    target = quote(url, safe=":/?#[]@!$&'()*+,;=%~-._")
    return f"<{slack_escape(target)}|{slack_escape(label)}>"


def slack_payload(message: Message) -> dict[str, Any]:
    """Slack's incoming-webhook body: ``text`` (notifications, plain clients) and ``blocks``."""
    summary = "\n".join(slack_escape(_line(line, MAX_LINE)) for line in message.lines)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _line(message.title, MAX_TITLE)}},
    ]
    if summary:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": summary[:MAX_SLACK_SECTION]}})
    quoted = []
    for ex in message.examples[:MAX_EXAMPLES]:
        item = "> " + slack_escape(_line(ex.text, MAX_EXAMPLE))
        meta = ", ".join(slack_escape(_line(v, 80)) for v in (ex.source, ex.when) if v)
        url = _safe_url(ex.url)
        tail = " ".join(p for p in (meta, _slack_link(url, "link") if url else "") if p)
        quoted.append(item + (f"\n{tail}" if tail else ""))
    if quoted:
        text = "*Examples*\n" + "\n".join(quoted)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:MAX_SLACK_SECTION]}})
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": slack_escape(f"earful {message.key}")}]}
    )
    fallback = slack_escape(_line(message.title, MAX_TITLE))
    return {"text": fallback, "blocks": blocks}


def email_html(message: Message) -> str:
    """The HTML alternative of an e-mail: every text escaped, only http(s) links."""
    esc = html.escape
    parts = [
        '<!DOCTYPE html><html><body style="font-family: sans-serif">',
        f"<h2>{esc(_line(message.title, MAX_TITLE))}</h2>",
    ]
    if message.lines:
        parts.append("<ul>" + "".join(f"<li>{esc(_line(x, MAX_LINE))}</li>" for x in message.lines) + "</ul>")
    if message.examples:
        parts.append("<h3>Examples</h3>")
        for ex in message.examples[:MAX_EXAMPLES]:
            meta = ", ".join(esc(_line(v, 80)) for v in (ex.source, ex.when) if v)
            url = _safe_url(ex.url)
            link = f' <a href="{esc(url, quote=True)}">link</a>' if url else ""
            parts.append(
                f"<blockquote>{esc(_line(ex.text, MAX_EXAMPLE))}<br><small>{meta}{link}</small></blockquote>"
            )
    parts.append(f'<p style="color: #888"><small>earful {esc(message.key)}</small></p></body></html>')
    return "\n".join(parts)


# --------------------------------------------------------------------------- channels


class Channel(Protocol):
    """Somewhere a message can be sent. ``send`` raises :class:`DeliveryError` (retryable) or
    :class:`DeliveryRefused` (not worth retrying now); ``secrets`` are scrubbed from errors."""

    name: str

    def send(self, message: Message, timeout_s: float) -> None: ...

    def secrets(self) -> list[str]: ...


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """urllib would turn a redirected POST into a GET without its body: refuse instead."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> int:
    """POST ``body``; the status of a 2xx answer. Errors never carry the URL."""
    if _safe_url(url) is None:
        raise DeliveryRefused("the URL is not an http(s) URL")
    request = urllib.request.Request(  # noqa: S310 (the scheme is checked above)
        url, data=body, method="POST", headers={"User-Agent": USER_AGENT, **headers}
    )
    try:
        with _opener.open(request, timeout=timeout_s) as response:
            response.read(65536)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        code, reason = exc.code, exc.reason
        exc.close()
        if 300 <= code < 400:
            raise DeliveryRefused(f"HTTP {code}: redirected; configure the final URL") from None
        if 400 <= code < 500 and code not in (408, 425, 429):
            raise DeliveryRefused(f"HTTP {code} {reason}") from None
        raise DeliveryError(f"HTTP {code} {reason}") from None
    except urllib.error.URLError as exc:
        cause = exc.reason
        detail = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause)
        raise DeliveryError(f"cannot connect: {detail}") from None
    except (TimeoutError, OSError) as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc.strerror or exc}") from None
    except http.client.HTTPException as exc:  # a garbled answer
        raise DeliveryError(f"bad HTTP answer: {type(exc).__name__}") from None


def _connection(conn_id: str) -> Any:
    """An Airflow connection by id (inside Airflow, or from ``AIRFLOW_CONN_<ID>``)."""
    try:
        from airflow.sdk import BaseHook
    except ImportError:
        raise DeliveryRefused(f"conn_id {conn_id!r} needs Airflow, which is not installed") from None
    try:
        return BaseHook.get_connection(conn_id)
    except Exception as exc:
        raise DeliveryRefused(f"no Airflow connection {conn_id!r} ({type(exc).__name__})") from None


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


class SlackChannel:
    """A Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat, ...)."""

    def __init__(self, name: str, url: str | None, conn_id: str | None = None) -> None:
        self.name = name
        self._url = url
        self._conn_id = conn_id

    def url(self) -> str:
        if self._url is None and self._conn_id:
            self._url = _connection(self._conn_id).host or ""
        return self._url or ""

    def secrets(self) -> list[str]:
        return [s for s in (self._url,) if s]

    def send(self, message: Message, timeout_s: float) -> None:
        body = json.dumps(slack_payload(message)).encode()
        post(self.url(), body, {"Content-Type": "application/json"}, timeout_s)


class WebhookChannel:
    """A generic JSON webhook, signed with HMAC-SHA256 when it has a secret (module docstring)."""

    def __init__(
        self, name: str, url: str | None, secret: str | None = None, conn_id: str | None = None
    ) -> None:
        self.name = name
        self._url = url
        self._secret = secret
        self._conn_id = conn_id

    def _resolve(self) -> None:
        if self._url is None and self._conn_id:
            conn = _connection(self._conn_id)
            self._url = conn.host or ""
            self._secret = self._secret or conn.password or None

    def secrets(self) -> list[str]:
        return [s for s in (self._url, self._secret) if s]

    def body(self, message: Message) -> bytes:
        doc = {"event": "earful.alert", "key": message.key, "text": message.plain(), "alert": message.data}
        return json.dumps(doc, ensure_ascii=False, sort_keys=True, default=str).encode()

    def send(self, message: Message, timeout_s: float) -> None:
        self._resolve()
        body = self.body(message)
        headers = {"Content-Type": "application/json", DELIVERY_HEADER: message.key[:200]}
        if self._secret:
            timestamp = str(int(time.time()))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = "sha256=" + sign(self._secret, timestamp, body)
        post(self._url or "", body, headers, timeout_s)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``<timestamp>.<body>`` under ``secret``."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str, timestamp: str, body: bytes, signature: str, *, now: float | None = None
) -> bool:
    """What a receiver does: recompute the signature over the raw body, compare in constant
    time, and refuse a timestamp more than five minutes off (a replayed request)."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > SIGNATURE_TOLERANCE_S:
        return False
    return hmac.compare_digest(signature, "sha256=" + sign(secret, timestamp, body))


class EmailChannel:
    """E-mail over SMTP: plain text with an HTML alternative; STARTTLS and login optional."""

    def __init__(self, settings: EmailNotifier) -> None:
        self.name = settings.name
        self.settings = settings
        self._host, self._port = settings.host, settings.port
        self._username = settings.username
        self._password = _secret(settings.password)
        self._resolved = settings.conn_id is None

    def _resolve(self) -> None:
        if self._resolved or self.settings.conn_id is None:
            return
        conn = _connection(self.settings.conn_id)
        self._host = conn.host or self._host
        self._port = int(conn.port or self._port)
        self._username = conn.login or self._username
        self._password = conn.password or self._password
        self._resolved = True

    def secrets(self) -> list[str]:
        return [s for s in (self._password,) if s]

    def email(self, message: Message) -> EmailMessage:
        s = self.settings
        mail = EmailMessage()
        mail["Subject"] = "[Earful] " + _line(message.title.removeprefix("Earful: "), MAX_TITLE)
        mail["From"] = s.sender
        mail["To"] = ", ".join(s.recipients)
        mail["Date"] = formatdate(usegmt=True)
        mail["Message-ID"] = make_msgid(domain="earful.invalid")
        mail["X-Earful-Alert"] = _line(message.key, 200)
        mail.set_content(message.plain())
        mail.add_alternative(email_html(message), subtype="html")
        for name, mime, content in message.attachments:
            maintype, _, subtype = mime.partition("/")
            mail.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)
        return mail

    def send(self, message: Message, timeout_s: float) -> None:
        self._resolve()
        mail = self.email(message)
        try:
            with smtplib.SMTP(self._host, self._port, timeout=timeout_s) as smtp:
                if self.settings.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self._username:
                    smtp.login(self._username, self._password or "")
                smtp.send_message(mail)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryRefused(f"SMTP login refused ({exc.smtp_code})") from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryRefused(f"SMTP refused {len(exc.recipients)} recipient(s)") from None
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else ""
            error = DeliveryRefused if 500 <= exc.smtp_code < 600 else DeliveryError
            raise error(f"SMTP {exc.smtp_code} {text}".strip()) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP: {type(exc).__name__}: {exc}") from None


def channel_for(notifier: Notifier) -> Channel:
    """The channel a configured notifier describes."""
    if isinstance(notifier, SlackNotifier):
        return SlackChannel(notifier.name, _secret(notifier.url) or None, notifier.conn_id)
    if isinstance(notifier, WebhookNotifier):
        url, secret = _secret(notifier.url) or None, _secret(notifier.secret) or None
        return WebhookChannel(notifier.name, url, secret, notifier.conn_id)
    return EmailChannel(notifier)


def channels(config: Config) -> list[Channel]:
    return [channel_for(n) for n in config.notifiers]


# --------------------------------------------------------------------------- retrying


@dataclass(frozen=True)
class Outcome:
    """How delivering one message on one channel went."""

    channel: str
    status: Status
    attempts: int
    error: str | None = None


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` without any of ``secrets`` in it, capped: safe to log and to store."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text[:MAX_ERROR]


def deliver(
    channel: Channel,
    message: Message,
    *,
    attempts: int = 3,
    backoff_s: float = 2.0,
    timeout_s: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """Send ``message``, retrying a failure after ``backoff_s``, then twice that, and so on
    (at most a minute between tries). Never raises: the outcome says ``sent`` or ``pending``."""
    error = "not tried"
    for attempt in range(1, attempts + 1):
        try:
            channel.send(message, timeout_s)
        except DeliveryError as exc:
            error = scrub(str(exc), channel.secrets())
            logger.warning(
                "alert %s: %s failed (attempt %d of %d): %s",
                message.key,
                channel.name,
                attempt,
                attempts,
                error,
            )
            if isinstance(exc, DeliveryRefused) or attempt == attempts:
                return Outcome(channel.name, "pending", attempt, error)
            sleep(min(backoff_s * 2 ** (attempt - 1), 60.0))
        except Exception as exc:  # a bug or an odd library error must not lose the alert
            error = scrub(f"{type(exc).__name__}: {exc}", channel.secrets())
            logger.warning("alert %s: %s failed: %s", message.key, channel.name, error)
            return Outcome(channel.name, "pending", attempt, error)
        else:
            logger.info("alert %s: sent to %s (attempt %d)", message.key, channel.name, attempt)
            return Outcome(channel.name, "sent", attempt)
    return Outcome(channel.name, "pending", attempts, error)


# --------------------------------------------------------------------------- bookkeeping


def initial_deliveries(config: Config) -> dict[str, Any]:
    """``alert.deliveries`` of a new alert: every configured channel pending, untried."""
    return {n.name: {"status": "pending", "attempts": 0} for n in config.notifiers}


@dataclass(frozen=True)
class DeliveryReport:
    """What one alert's deliveries came to in this run."""

    alert_id: int
    key: str
    outcomes: list[Outcome]
    skipped: list[str]  # channels not tried: sent already, another run at it, not configured


def deliver_alerts(
    db: Database,
    config: Config,
    render: Callable[[Alert], Message],
    *,
    alert_ids: Sequence[int] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[DeliveryReport]:
    """Send every delivery that is not ``sent`` yet (of ``alert_ids`` only, when given), oldest
    alert first, and record each outcome in ``alert.deliveries``."""
    settings = config.alerts
    by_name = {c.name: c for c in channels(config)}
    # A claim outlives the longest a run can take to send one message.
    lease = timedelta(seconds=settings.delivery_attempts * (settings.delivery_timeout_s * 2 + 60) + 60)
    text = cast(_ALERT.c.deliveries, Text)
    query = select(_ALERT.c.id).where(or_(text.like("%pending%"), text.like("%sending%")))
    if alert_ids is not None:
        query = query.where(_ALERT.c.id.in_(list(alert_ids)))
    with db.translate_errors(), db.engine.connect() as conn:
        ids = list(conn.scalars(query.order_by(_ALERT.c.id)))
    reports = []
    for alert_id in ids:
        outcomes: list[Outcome] = []
        skipped: list[str] = []
        alert: Alert | None = None
        _, state = _read(db, alert_id)
        for name, entry in state.items():
            if (entry or {}).get("status") == "sent":
                continue
            channel = by_name.get(name)
            if channel is None:
                skipped.append(name)
                logger.warning("alert %d: notifier %s is no longer configured; not sent", alert_id, name)
                continue
            claimed = _claim(db, alert_id, name, now(), lease)
            if not claimed:
                skipped.append(name)
                continue
            if alert is None:
                with db.session() as session:
                    alert = session.get(Alert, alert_id)
                    assert alert is not None
                    session.expunge(alert)
            outcome = deliver(
                channel,
                render(alert),
                attempts=settings.delivery_attempts,
                backoff_s=settings.delivery_backoff_s,
                timeout_s=settings.delivery_timeout_s,
                sleep=sleep,
            )
            _record(db, alert_id, name, outcome, now())
            outcomes.append(outcome)
        key = alert.dedup_key if alert is not None else _key(db, alert_id)
        reports.append(DeliveryReport(alert_id, key, outcomes, skipped))
    return reports


def _key(db: Database, alert_id: int) -> str:
    with db.translate_errors(), db.engine.connect() as conn:
        return str(conn.scalar(select(_ALERT.c.dedup_key).where(_ALERT.c.id == alert_id)))


def _read(db: Database, alert_id: int) -> tuple[str, dict[str, Any]]:
    """The deliveries column as stored (for the compare-and-swap) and parsed."""
    query = select(cast(_ALERT.c.deliveries, Text)).where(_ALERT.c.id == alert_id)
    with db.translate_errors(), db.engine.connect() as conn:
        raw = conn.scalar(query) or "{}"
    value = json.loads(raw)
    return raw, value if isinstance(value, dict) else {}


def _swap(db: Database, alert_id: int, change: Callable[[dict[str, Any]], dict[str, Any] | None]) -> bool:
    """Apply ``change`` to the deliveries column unless another run changed it meanwhile (then
    read it again and retry). ``change`` returns ``None`` to leave it as it is."""
    for _ in range(20):
        raw, state = _read(db, alert_id)
        new = change(state)
        if new is None:
            return False
        stmt = (
            update(_ALERT)
            .where(_ALERT.c.id == alert_id, cast(_ALERT.c.deliveries, Text) == raw)
            .values(deliveries=new)
        )
        with db.translate_errors(), db.engine.begin() as conn:
            if conn.execute(stmt).rowcount == 1:
                return True
    raise DeliveryError(f"alert {alert_id}: its deliveries keep changing under this run; try again")


def _claim(db: Database, alert_id: int, name: str, at: datetime, lease: timedelta) -> bool:
    """Mark a delivery ``sending`` for this run; ``False`` if it is sent, or another run holds
    an unexpired claim on it."""

    def change(state: dict[str, Any]) -> dict[str, Any] | None:
        entry = dict(state.get(name) or {})
        if entry.get("status") == "sent":
            return None
        if entry.get("status") == "sending":
            since = datetime.fromisoformat(entry.get("claimed_at") or "1970-01-01T00:00:00+00:00")
            if at - since < lease:
                return None
        entry.update(status="sending", claimed_at=at.isoformat())
        return {**state, name: entry}

    return _swap(db, alert_id, change)


def _record(db: Database, alert_id: int, name: str, outcome: Outcome, at: datetime) -> None:
    def change(state: dict[str, Any]) -> dict[str, Any]:
        entry = dict(state.get(name) or {})
        entry.pop("claimed_at", None)
        entry.update(
            status=outcome.status,
            attempts=int(entry.get("attempts") or 0) + outcome.attempts,
            error=outcome.error,
            updated_at=at.isoformat(),
        )
        if outcome.status == "sent":
            entry["sent_at"] = at.isoformat()
        return {**state, name: entry}

    _swap(db, alert_id, change)
