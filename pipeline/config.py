"""Earful's configuration: one YAML file, validated by a typed schema.

Defaults live in the models below; ``earful.yaml`` overrides them, and ``EARFUL_*``
environment variables override the file (``EARFUL_DATABASE_URL`` for the database).
Secrets never sit in the file: a notifier's URL or password, and a database password, must be
``${ENV_VAR}`` references, which are expanded before validation. Every model forbids unknown
keys, so a typo fails loudly instead of being ignored, and every error names the key path and
its line in the file (PyYAML's node marks), so a user is never shown a traceback::

    >>> cfg = load_config_text("brands: [{name: Acme, aliases: [ACME]}]")
    >>> cfg.brands[0].aliases
    ['ACME']
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from croniter import croniter
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from earful.pipeline.errors import ConfigError

DEFAULT_CONFIG_FILE = "earful.yaml"
DEFAULT_DATABASE_URL = "sqlite:///earful.sqlite3"
CONFIG_ENV = "EARFUL_CONFIG"
DATABASE_URL_ENV = "EARFUL_DATABASE_URL"

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_SCHEDULE_PRESETS = {"@once", "@hourly", "@daily", "@weekly", "@monthly", "@yearly"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Model):
    """Where mentions are stored. A relative SQLite path is relative to the config file."""

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """Show the URL without its password."""
        from sqlalchemy.engine import make_url

        try:
            shown = make_url(self.url).render_as_string(hide_password=True)
        except Exception:
            shown = "(unparsable URL)"
        yield "url", shown
        yield from super().__repr_args__()

    url: str = Field(DEFAULT_DATABASE_URL, repr=False)  # may hold a password from ${VAR}
    busy_timeout_s: float = Field(30.0, gt=0, le=3600)
    echo: bool = False


class PrivacySettings(_Model):
    """Author names are pseudonymised with a keyed hash unless a team switches it off."""

    pseudonymise_authors: bool = True
    key_env: str = "EARFUL_PSEUDONYM_KEY"


class StoreSettings(_Model):
    batch_size: int = Field(5000, ge=1, le=50_000)
    max_text_chars: int = Field(200_000, ge=100)


class Brand(_Model):
    name: str = Field(min_length=1, max_length=200)
    aliases: list[str] = Field(default_factory=list)

    @field_validator("aliases")
    @classmethod
    def _no_blank_alias(cls, value: list[str]) -> list[str]:
        if any(not a.strip() for a in value):
            raise ValueError("an alias is blank")
        return value


SourceKind = Literal["reviews", "blog", "feed", "api", "import"]


class Source(_Model):
    """A place mentions come from. ``options`` is free-form, read by the source's spider."""

    name: str
    kind: SourceKind
    spider: str | None = None
    start_urls: list[HttpUrl] = Field(default_factory=list)
    brand: str | None = None
    schedule: str | None = "@daily"
    enabled: bool = True
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError(
                "use letters, digits, '-', '_' or '.', starting with a letter or digit (at most 100)"
            )
        return value

    @model_validator(mode="after")
    def _declarative_needs_selectors(self) -> Source:
        if self.spider == "declarative":
            missing = [
                k for k in ("item", "text") if not isinstance(self.options.get(k), str) or not self.options[k]
            ]
            if missing:
                raise ValueError(
                    "a declarative source needs selectors in options: "
                    + ", ".join(f"options.{k}" for k in missing)
                    + " (CSS, or xpath:...)"
                )
        return self

    @field_validator("schedule")
    @classmethod
    def _valid_schedule(cls, value: str | None) -> str | None:
        if value is None or value in _SCHEDULE_PRESETS:
            return value
        if len(value.split()) == 5 and croniter.is_valid(value):
            return value
        raise ValueError(
            f"not a schedule: {value!r}; use a cron expression of 5 fields or one of "
            + ", ".join(sorted(_SCHEDULE_PRESETS))
        )


class TopicSettings(_Model):
    """``taxonomy`` names a YAML taxonomy file; unset means the one that ships with Earful."""

    taxonomy: Path | None = None


Sentiment = Literal["negative", "neutral", "positive"]


class ClassifierSettings(_Model):
    """The sentiment and topic model that ``earful classify`` runs.

    ``model`` is a local model directory (Earful's own format or any Hugging Face
    sequence-classification model); unset means the model that ships with Earful. ``labels``
    maps a Hugging Face model's label names onto Earful's three. A relative ``model`` path is
    relative to the config file.
    """

    model: Path | None = None
    labels: dict[str, Sentiment] = Field(default_factory=dict)
    threads: int | None = Field(None, ge=1, le=1024)  # None: every core this process may use
    batch_size: int = Field(64, ge=1, le=4096)
    commit_every: int = Field(256, ge=1, le=100_000)
    # How Earful's own model runs: ONNX Runtime with int8 weights (fastest; slightly different
    # probabilities, so its own model version), ONNX Runtime fp32, or PyTorch (bench/classify.py
    # measures all three). A Hugging Face model in ``model`` always runs in PyTorch.
    runtime: Literal["onnx-int8", "onnx", "torch"] = "onnx-int8"


class AlertSettings(_Model):
    """Negative-spike detection; the alerts issue documents each knob."""

    window_hours: int = Field(3, ge=1, le=168)
    baseline_weeks: int = Field(6, ge=2, le=26)
    min_count: int = Field(5, ge=1)
    # Smallest effect that alerts: negatives against the usual in the most surprising window
    # (per other mention when totals are known; chosen on the backtest).
    min_ratio: float = Field(1.5, ge=1, le=100)
    # Per hourly run, so ~720 runs a month; 0.02 keeps about one false alarm per brand-month
    # on the backtest's eight brands (0.01: half as many; fewer brands, more per brand).
    false_discovery_rate: float = Field(0.005, gt=0, lt=1)
    cooldown_hours: int = Field(24, ge=0)
    # Delivery: tries per channel and run, the wait before the second (doubling after), and
    # the timeout of one try; a channel still down stays pending for the next run.
    delivery_attempts: int = Field(3, ge=1, le=10)
    delivery_backoff_s: float = Field(2.0, ge=0, le=300)
    delivery_timeout_s: float = Field(10.0, gt=0, le=300)


class SlackNotifier(_Model):
    kind: Literal["slack"]
    name: str
    url: SecretStr = SecretStr("")  # empty: from the Airflow connection conn_id
    conn_id: str | None = None  # an Airflow connection whose host is the URL, instead of url

    @model_validator(mode="after")
    def _url_or_connection(self) -> SlackNotifier:
        if not self.url.get_secret_value() and self.conn_id is None:
            raise ValueError("give url (as ${ENV_VAR}) or conn_id (an Airflow connection)")
        return self


class WebhookNotifier(_Model):
    kind: Literal["webhook"]
    name: str
    url: SecretStr = SecretStr("")  # empty: from the Airflow connection conn_id
    secret: SecretStr | None = None
    conn_id: str | None = None  # an Airflow connection: host is the URL, password the secret

    @model_validator(mode="after")
    def _url_or_connection(self) -> WebhookNotifier:
        if not self.url.get_secret_value() and self.conn_id is None:
            raise ValueError("give url (as ${ENV_VAR}) or conn_id (an Airflow connection)")
        return self


class EmailNotifier(_Model):
    kind: Literal["email"]
    name: str
    host: str
    port: int = Field(587, ge=1, le=65535)
    starttls: bool = True
    username: str | None = None
    password: SecretStr | None = None
    sender: str
    recipients: list[str] = Field(min_length=1)
    conn_id: str | None = None  # an Airflow connection: its host, port, login, password win


Notifier = Annotated[SlackNotifier | WebhookNotifier | EmailNotifier, Field(discriminator="kind")]

# Keys whose values are secrets: in the file they must be ${ENV_VAR} references.
SECRET_KEYS = {"url", "secret", "password"}


class ReportSettings(_Model):
    """The weekly report (``earful report``). A week with fewer than ``min_judged`` judged
    mentions says it is too thin to conclude from; ``out_dir`` is relative to the config file."""

    weeks: int = Field(12, ge=2, le=104)  # weeks in the trend chart, this week included
    min_judged: int = Field(30, ge=1)
    examples: int = Field(5, ge=1, le=50)  # mentions listed per section
    out_dir: Path | None = None  # None: reports/ beside the config file


class Config(_Model):
    """The whole of ``earful.yaml``."""

    database: DatabaseSettings = DatabaseSettings()
    timezone: str = "UTC"
    privacy: PrivacySettings = PrivacySettings()
    store: StoreSettings = StoreSettings()
    brands: list[Brand] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)
    topics: TopicSettings = TopicSettings()
    classifier: ClassifierSettings = ClassifierSettings()
    alerts: AlertSettings = AlertSettings()
    report: ReportSettings = ReportSettings()
    notifiers: list[Notifier] = Field(default_factory=list)
    # Where the file was read from; set by the loader, not by the file.
    path: Path | None = Field(default=None, exclude=True)

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin") from None
        return value

    @model_validator(mode="after")
    def _cross_references(self) -> Config:
        _unique("brands", [b.name for b in self.brands], fold=True)
        _unique("sources", [s.name for s in self.sources])
        _unique("notifiers", [n.name for n in self.notifiers])
        brands = {b.name.casefold() for b in self.brands}
        for i, source in enumerate(self.sources):
            if source.brand is not None and source.brand.casefold() not in brands:
                raise _KeyedError(f"sources[{i}].brand", f"no brand named {source.brand!r} in brands")
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def source(self, name: str) -> Source:
        for source in self.sources:
            if source.name == name:
                return source
        known = ", ".join(s.name for s in self.sources) or "none configured"
        raise ConfigError(f"no source named {name!r} (known: {known})", key="sources")


class _KeyedError(ValueError):
    """A cross-field error that knows which key it is about."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(message)


def _unique(what: str, names: list[str], *, fold: bool = False) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        key = name.casefold() if fold else name
        if key in seen:
            raise _KeyedError(f"{what}[{i}].name", f"duplicate name {name!r}")
        seen.add(key)


# --------------------------------------------------------------------------- loading


def default_config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV, DEFAULT_CONFIG_FILE))


def load_config(path: str | os.PathLike[str] | None = None, *, database_env: bool = True) -> Config:
    """Read, expand and validate the config file.

    With no ``path``, ``$EARFUL_CONFIG`` or ``./earful.yaml`` is read, and a missing file
    means the embedded defaults (SQLite in the working directory). A path given explicitly
    must exist.
    """
    explicit = path is not None or CONFIG_ENV in os.environ
    file = Path(path) if path is not None else default_config_path()
    if not file.exists():
        if explicit:
            raise ConfigError(f"config file {file} does not exist; `earful init` writes an example")
        return _finish(Config(), None)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {file}: {exc.strerror}") from None
    return load_config_text(text, path=file, database_env=database_env)


def load_config_text(text: str, *, path: Path | None = None, database_env: bool = True) -> Config:
    """Validate config given as YAML text (``path`` only labels errors and anchors SQLite).

    ``database_env=False`` ignores ``EARFUL_DATABASE_URL`` (the demo keeps to its own file).
    """
    label = str(path) if path else None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise ConfigError(f"not valid YAML: {exc.problem}", line=line, path=label) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", path=label) from None
    if node is None:
        data: Any = {}
        lines: dict[tuple[str | int, ...], int] = {}
    else:
        lines = {}
        _index_lines(node, (), lines, label)
        data = yaml.load(text, Loader=yaml.SafeLoader)
        if data is None:  # a document with nothing but comments, or "---"
            data = {}
    if not isinstance(data, dict):
        raise ConfigError("the file must be a mapping of settings (key: value)", line=1, path=label)

    _forbid_literal_secrets(data, (), lines, label)
    override = os.environ.get(DATABASE_URL_ENV) if database_env else None
    if override and isinstance(data.get("database"), dict):
        data["database"].pop("url", None)  # replaced below, so its ${VAR}s need not be set
    data = _expand_env(data, (), lines, label)
    if override:
        if not isinstance(data.get("database"), dict):
            data["database"] = {}
        data["database"]["url"] = override
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise _config_error(exc, data, lines, label) from None
    except _KeyedError as exc:
        raise ConfigError(str(exc), key=exc.key, line=_line_for_key(exc.key, lines), path=label) from None
    return _finish(config, path)


def _finish(config: Config, path: Path | None) -> Config:
    """Anchor relative paths (the SQLite file, the classifier model, the topic taxonomy) at the
    config file's folder and remember the path."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    url = config.database.url
    try:
        parsed = make_url(url)
    except ArgumentError:
        parsed = None  # reported when the database is opened
    if path is not None and parsed is not None and parsed.get_backend_name() == "sqlite":
        file = parsed.database or ""
        if file and file != ":memory:" and not file.startswith("file:") and not Path(file).is_absolute():
            url = parsed.set(database=str((path.parent / file).resolve())).render_as_string(
                hide_password=False
            )
    database = config.database.model_copy(update={"url": url})
    topics, classifier = config.topics, config.classifier
    if topics.taxonomy is not None:
        topics = topics.model_copy(update={"taxonomy": _anchor(topics.taxonomy, path)})
    if classifier.model is not None:
        classifier = classifier.model_copy(update={"model": _anchor(classifier.model, path)})
    return config.model_copy(
        update={"database": database, "topics": topics, "classifier": classifier, "path": path}
    )


def _anchor(file: Path, config_path: Path | None) -> Path:
    """A path from the config file: ``~`` expanded, relative to the file's folder."""
    file = file.expanduser()
    if config_path is None or file.is_absolute():
        return file
    return (config_path.parent / file).resolve()


def _index_lines(
    node: yaml.Node, path: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int], label: str | None
) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                raise ConfigError(
                    f"{key!r} is given twice",
                    key=_format_key((*path, key)),
                    line=key_node.start_mark.line + 1,
                    path=label,
                )
            seen.add(key)
            lines[(*path, key)] = key_node.start_mark.line + 1
            _index_lines(value_node, (*path, key), lines, label)
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, (*path, i), lines, label)


def _walk_strings(data: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _walk_strings(value, (*path, str(key)))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _walk_strings(value, (*path, i))
    elif isinstance(data, str):
        yield path, data


def _forbid_literal_secrets(
    data: Any, path: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int], label: str | None
) -> None:
    for key, value in _walk_strings(data, path):
        if key[:1] == ("notifiers",) and key[-1] in SECRET_KEYS and not _ENV_REF.search(value):
            raise ConfigError(
                "secrets must not be written into the config file; set an environment variable "
                "and write its name as ${NAME}",
                key=_format_key(key),
                line=lines.get(key),
                path=label,
            )
        password = re.search(r"://[^/@:]*:([^/@]+)@", value) if key == ("database", "url") else None
        if password and not _ENV_REF.fullmatch(password.group(1)):
            raise ConfigError(
                "the database URL contains a password; use ${ENV_VAR} for it or set "
                f"{DATABASE_URL_ENV} instead",
                key="database.url",
                line=lines.get(key),
                path=label,
            )


def _expand_env(
    data: Any, path: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int], label: str | None
) -> Any:
    if isinstance(data, dict):
        return {k: _expand_env(v, (*path, str(k)), lines, label) for k, v in data.items()}
    if isinstance(data, list):
        return [_expand_env(v, (*path, i), lines, label) for i, v in enumerate(data)]
    if not isinstance(data, str) or "${" not in data:
        return data

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = os.environ.get(name)
        if default is not None and not value:  # shell semantics: ":-" also replaces ""
            return default
        if value is None:
            raise ConfigError(
                f"environment variable {name} is not set",
                key=_format_key(path),
                line=lines.get(path),
                path=label,
            )
        return value

    return _ENV_REF.sub(replace, data)


def _format_key(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _data_path(loc: tuple[str | int, ...], data: Any) -> tuple[str | int, ...]:
    """Drop the parts of a pydantic error location that are not in the document.

    Discriminated unions put the tag (``slack``) into the location; the user's file does not
    have that level.
    """
    out: list[str | int] = []
    node = data
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            out.append(part)
            node = node[part]
        elif isinstance(node, (dict, list)):
            if isinstance(node, dict) and isinstance(part, str) and part not in _all_field_names():
                continue  # a union tag
            out.append(part)
            node = None
        else:
            break
    return tuple(out)


def _all_field_names() -> set[str]:
    names: set[str] = set()
    for model in (
        Config,
        DatabaseSettings,
        PrivacySettings,
        StoreSettings,
        Brand,
        Source,
        TopicSettings,
        ClassifierSettings,
        AlertSettings,
        ReportSettings,
        SlackNotifier,
        WebhookNotifier,
        EmailNotifier,
    ):
        names.update(name for name in model.model_fields if name != "path")
    return names


def _line_for_key(key: str, lines: dict[tuple[str | int, ...], int]) -> int | None:
    for path, line in sorted(lines.items(), key=lambda kv: -len(kv[0])):
        if (
            _format_key(path) == key
            or key.startswith(_format_key(path) + "[")
            or key.startswith(_format_key(path) + ".")
        ):
            return line
    return None


def _line_for_path(path: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int]) -> int | None:
    for n in range(len(path), -1, -1):
        if path[:n] in lines:
            return lines[path[:n]]
    return None


def _config_error(
    exc: ValidationError, data: Any, lines: dict[tuple[str | int, ...], int], label: str | None
) -> ConfigError:
    messages: list[tuple[str, int | None, str]] = []
    for error in exc.errors():
        path = _data_path(tuple(error["loc"]), data)
        key = _format_key(path)
        line = _line_for_path(path, lines)
        kind = error["type"]
        if kind == "extra_forbidden":
            message = "unknown setting"
            close = difflib.get_close_matches(str(path[-1]), sorted(_all_field_names()), n=1)
            if close:
                message += f"; did you mean {close[0]!r}?"
        elif kind == "missing":
            message = "required setting is missing"
        else:
            message = str(error["msg"])
            if message.startswith("Value error, "):
                message = message[len("Value error, ") :]
            if kind == "value_error" and isinstance(error.get("ctx", {}).get("error"), _KeyedError):
                keyed: _KeyedError = error["ctx"]["error"]
                key = keyed.key
                line = _line_for_key(key, lines)
        messages.append((key, line, message))
    key, line, message = messages[0]
    more = None
    if len(messages) > 1:
        more = "; ".join(f"{k}: {m}" + (f" (line {ln})" if ln else "") for k, ln, m in messages[1:4])
        if len(messages) > 4:
            more += f"; and {len(messages) - 4} more"
    return ConfigError(message, key=key, line=line, path=label, more=more)


def example_config_text() -> str:
    """The commented example that ``earful init`` writes."""
    from importlib.resources import files

    return files("earful.pipeline").joinpath("data/earful.example.yaml").read_text(encoding="utf-8")
