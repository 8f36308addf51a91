"""segmend's config file: the ``[kafka]`` section, the user name and worker count;
and Kafka topic names.

Publishing is off unless ``bootstrap_servers`` is set (``--kafka HOST:PORT``,
the config file or the settings dialog).  The config file is TOML, by default
``$SEGMEND_CONFIG`` or ``~/.config/segmend/config.toml``::

    [kafka]
    bootstrap_servers = "broker1:9092,broker2:9092"   # or a list of strings
    topic_prefix = "prod-"
    security_protocol = "SASL_SSL"
    sasl_mechanism = "SCRAM-SHA-512"
    sasl_username = "proofreader"
    sasl_password_env = "SEGMEND_KAFKA_PASSWORD"       # or sasl_password = "..."
    ssl_cafile = "/etc/ssl/kafka-ca.pem"

    [user]
    name = "proofreader"      # recorded in mutations and events (default: the login name)

    [workers]
    count = 4                 # worker threads of the app (default: one per core)

The desktop app's settings dialog edits this same file (:mod:`app.ui.config_file`).
The SASL password is never shown: :class:`KafkaSettings` redacts it from its
``repr``, and no error message includes it.  The options of kafka-python's
clients are built from the settings by :mod:`app.model.events.kafka_client`.
"""

from __future__ import annotations

import os
import re
import threading
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from app.model.errors import SegmendError

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "KafkaConfigError",
    "KafkaSettings",
    "UserConfig",
    "default_config_path",
    "load_settings",
    "load_user_config",
    "read_config",
    "topic_name",
]

#: Where the config file is looked for when ``$SEGMEND_CONFIG`` is unset.
DEFAULT_CONFIG_PATH = Path("~/.config/segmend/config.toml")

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI")
_NEEDS_PASSWORD = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
_TOPIC_CHARS = re.compile(r"[A-Za-z0-9._-]*")
_HOST_PORT = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:,\[\]]+):(?P<port>\d{1,5})")
_REDACTED = "***"
_SECONDS_FIELDS = ("connect_timeout_s", "request_timeout_s", "max_backoff_s")
"""The float settings: each finite, positive and a wait Python's threads can make."""


class KafkaConfigError(SegmendError, ValueError):
    """Kafka settings that cannot be used; the message names the file and key."""


@dataclass(frozen=True, repr=False)
class KafkaSettings:
    """How to reach the Kafka cluster, or ``bootstrap_servers=None`` for off.

    Attributes
    ----------
    bootstrap_servers : str or None
        ``"host:port[,host:port...]"``; None turns publishing off.
    topic_prefix : str
        Prepended to DVID's topic name (see :func:`topic_name`).
    client_id : str
        Kafka client id.
    security_protocol : str
        One of ``PLAINTEXT``, ``SSL``, ``SASL_PLAINTEXT``, ``SASL_SSL``.
    sasl_mechanism, sasl_username, sasl_password : str or None
        SASL credentials (the password never appears in ``repr`` or ``str``).
    ssl_cafile, ssl_certfile, ssl_keyfile : str or None
        TLS files.
    ssl_check_hostname : bool
        Verify the broker's certificate host name.
    connect_timeout_s : float
        Longest wait to reach a broker before declaring it down.
    request_timeout_s : float
        Longest wait for a produce acknowledgement.
    max_backoff_s : float
        Cap of the exponential back-off between reconnection attempts.

    Raises
    ------
    ValueError
        Naming the first field with a bad value.
    """

    bootstrap_servers: str | None = None
    topic_prefix: str = ""
    client_id: str = "segmend"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_check_hostname: bool = True
    connect_timeout_s: float = 5.0
    request_timeout_s: float = 10.0
    max_backoff_s: float = 30.0

    def __post_init__(self) -> None:
        if self.bootstrap_servers is not None:
            self.bootstrap_hosts()  # validates
        if not isinstance(self.topic_prefix, str) or not _TOPIC_CHARS.fullmatch(self.topic_prefix):
            raise ValueError(
                f"topic_prefix may only hold letters, digits, '.', '_' and '-', "
                f"got {self.topic_prefix!r}"
            )
        if not isinstance(self.client_id, str) or not self.client_id:
            raise ValueError(f"client_id must be a non-empty string, got {self.client_id!r}")
        if self.security_protocol not in SECURITY_PROTOCOLS:
            raise ValueError(
                f"security_protocol must be one of {', '.join(SECURITY_PROTOCOLS)}, "
                f"got {self.security_protocol!r}"
            )
        sasl = self.security_protocol.startswith("SASL_")
        if self.sasl_mechanism is not None and self.sasl_mechanism not in SASL_MECHANISMS:
            raise ValueError(
                f"sasl_mechanism must be one of {', '.join(SASL_MECHANISMS)}, "
                f"got {self.sasl_mechanism!r}"
            )
        if sasl and self.sasl_mechanism is None:
            raise ValueError(f"security_protocol {self.security_protocol} needs a sasl_mechanism")
        if not sasl and self.sasl_mechanism is not None:
            raise ValueError(
                f"sasl_mechanism {self.sasl_mechanism} needs security_protocol "
                f"SASL_PLAINTEXT or SASL_SSL, not {self.security_protocol}"
            )
        if sasl and self.sasl_mechanism in _NEEDS_PASSWORD:
            if not self.sasl_username:
                raise ValueError(f"sasl_mechanism {self.sasl_mechanism} needs a sasl_username")
            if not self.sasl_password:
                raise ValueError(f"sasl_mechanism {self.sasl_mechanism} needs a sasl_password")
        for name in _SECONDS_FIELDS:
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0 < value <= threading.TIMEOUT_MAX
            ):
                raise ValueError(
                    f"{name} must be a positive number of seconds up to "
                    f"{threading.TIMEOUT_MAX:g}, got {value!r}"
                )
        if not isinstance(self.ssl_check_hostname, bool):
            raise ValueError(
                f"ssl_check_hostname must be true or false, got {self.ssl_check_hostname!r}"
            )

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "sasl_password" and value is not None:
                parts.append(f"{f.name}={_REDACTED!r}")
            else:
                parts.append(f"{f.name}={value!r}")
        return f"KafkaSettings({', '.join(parts)})"

    __str__ = __repr__

    @property
    def enabled(self) -> bool:
        """Whether a broker is configured."""
        return self.bootstrap_servers is not None

    def bootstrap_hosts(self) -> list[tuple[str, int]]:
        """``bootstrap_servers`` as ``[(host, port), ...]`` (empty when off).

        Raises
        ------
        ValueError
            If an entry is not ``host:port`` with a port in 1..65535.
        """
        if self.bootstrap_servers is None:
            return []
        if not isinstance(self.bootstrap_servers, str) or not self.bootstrap_servers.strip():
            raise ValueError(
                f"bootstrap_servers must be 'host:port[,host:port]', got {self.bootstrap_servers!r}"
            )
        hosts = []
        for entry in self.bootstrap_servers.split(","):
            match = _HOST_PORT.fullmatch(entry.strip())
            port = int(match["port"]) if match else 0
            if match is None or not 1 <= port <= 65535:
                raise ValueError(
                    f"bootstrap_servers entry {entry.strip()!r} is not host:port "
                    "(e.g. localhost:9092)"
                )
            hosts.append((match["host"].strip("[]"), port))
        return hosts

    def redact(self, text: str) -> str:
        """``text`` with the SASL password (if any) replaced by ``***``."""
        if self.sasl_password:
            return text.replace(self.sasl_password, _REDACTED)
        return text


def topic_name(prefix: str, repo_uuid: str, data_uuid: str) -> str:
    """DVID's topic of a data instance: ``<prefix>dvidrepo-<repo_uuid>-data-<data_uuid>``.

    Raises
    ------
    ValueError
        If a UUID is empty or the name is not a legal Kafka topic.
    """
    for name, value in (("repo_uuid", repo_uuid), ("data_uuid", data_uuid)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    topic = f"{prefix}dvidrepo-{repo_uuid}-data-{data_uuid}"
    if not _TOPIC_CHARS.fullmatch(topic) or len(topic) > 249:
        raise ValueError(
            f"{topic!r} is not a legal Kafka topic (letters, digits, '.', '_', '-'; "
            "at most 249 characters)"
        )
    return topic


# --------------------------------------------------------------------------- config file

_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "bootstrap_servers": (str, list),
    "topic_prefix": (str,),
    "client_id": (str,),
    "security_protocol": (str,),
    "sasl_mechanism": (str,),
    "sasl_username": (str,),
    "sasl_password": (str,),
    "ssl_cafile": (str,),
    "ssl_certfile": (str,),
    "ssl_keyfile": (str,),
    "ssl_check_hostname": (bool,),
    "connect_timeout_s": (int, float),
    "request_timeout_s": (int, float),
    "max_backoff_s": (int, float),
}
_FILE_ONLY_KEYS = ("sasl_password_env",)


def default_config_path() -> tuple[Path, bool]:
    """The config file to read and whether it was named explicitly (``$SEGMEND_CONFIG``)."""
    env = os.environ.get("SEGMEND_CONFIG")
    if env:
        return Path(env).expanduser(), True
    return DEFAULT_CONFIG_PATH.expanduser(), False


def read_config(path: Path) -> dict[str, Any]:
    """The whole config file as a dict (empty if the file does not exist).

    Raises
    ------
    KafkaConfigError
        If the file cannot be read or is not TOML (naming the file).
    """
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise KafkaConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise KafkaConfigError(f"{path}: cannot read the config file: {exc.strerror}") from None


@dataclass(frozen=True)
class UserConfig:
    """The config file's ``[user] name`` and ``[workers] count``.

    Attributes
    ----------
    user : str
        Recorded in mutations and events; empty: the login name.
    workers : int
        Worker threads; 0: one per core.
    """

    user: str = ""
    workers: int = 0


def load_user_config(path: str | Path | None = None) -> UserConfig:
    """Read ``[user] name`` and ``[workers] count`` (defaults for what is missing).

    Parameters
    ----------
    path : str or Path, optional
        The TOML file (default: as :func:`load_settings`; a missing file
        means the defaults).

    Raises
    ------
    KafkaConfigError
        On a malformed file or a value of the wrong type (naming file and key).
    """
    file = Path(path).expanduser() if path is not None else default_config_path()[0]
    data = read_config(file)
    values: dict[str, Any] = {}
    for section, key, field, kind in (("user", "name", "user", str),
                                      ("workers", "count", "workers", int)):
        table = data.get(section, {})
        if not isinstance(table, dict):
            raise KafkaConfigError(f"{file}: '{section}' must be a table ([{section}])")
        if key not in table:
            continue
        value = table[key]
        bad_int = kind is int and isinstance(value, int) and value < 0
        if isinstance(value, bool) or not isinstance(value, kind) or bad_int:
            wanted = "a string" if kind is str else "a whole number, 0 or more"
            raise KafkaConfigError(f"{file}: [{section}] {key} must be {wanted}, got {value!r}")
        values[field] = value
    return UserConfig(**values)


def _read_section(path: Path) -> dict[str, Any]:
    data = read_config(path)
    section = data.get("kafka", {})
    if not isinstance(section, dict):
        raise KafkaConfigError(f"{path}: 'kafka' must be a table ([kafka])")
    values: dict[str, Any] = {}
    for key, value in section.items():
        where = f"{path}: [kafka] {key}"
        if key == "sasl_password_env":
            if not isinstance(value, str) or not value:
                raise KafkaConfigError(f"{where} must name an environment variable")
            if value not in os.environ:
                raise KafkaConfigError(f"{where}: environment variable {value} is not set")
            values["sasl_password"] = os.environ[value]
            continue
        if key not in _FIELD_TYPES:
            known = ", ".join([*_FIELD_TYPES, *_FILE_ONLY_KEYS])
            raise KafkaConfigError(f"{path}: unknown key [kafka] {key} (known: {known})")
        types = _FIELD_TYPES[key]
        if isinstance(value, bool) and bool not in types:
            types = ()
        if not isinstance(value, types):
            shown = "<hidden>" if key == "sasl_password" else repr(value)
            wanted = " or ".join("list of strings" if t is list else t.__name__ for t in types)
            raise KafkaConfigError(f"{where} must be {wanted or 'a number'}, got {shown}")
        if key == "bootstrap_servers" and isinstance(value, list):
            if not value or not all(isinstance(v, str) for v in value):
                raise KafkaConfigError(f"{where} must be a non-empty list of 'host:port' strings")
            value = ",".join(value)
        values[key] = value
    return values


def load_settings(path: str | Path | None = None, **overrides: Any) -> KafkaSettings:
    """Read the ``[kafka]`` section of a config file, then apply ``overrides``.

    Parameters
    ----------
    path : str or Path, optional
        The TOML file.  By default ``$SEGMEND_CONFIG``, else
        ``~/.config/segmend/config.toml``.  A missing default file means all
        defaults (Kafka off); a missing file named by ``path`` or
        ``$SEGMEND_CONFIG`` is an error.
    **overrides
        :class:`KafkaSettings` fields (e.g. from the command line); a value of
        None means "not given" and keeps the file's value.

    Returns
    -------
    KafkaSettings

    Raises
    ------
    KafkaConfigError
        On a malformed file (naming the file and the key), an unknown key, a
        value of the wrong type, or settings that do not fit together.
    """
    if path is None:
        file, explicit = default_config_path()
    else:
        file, explicit = Path(path).expanduser(), True
    values: dict[str, Any] = {}
    if file.exists():
        values = _read_section(file)
        source = f"{file}: [kafka]"
    elif explicit:
        raise KafkaConfigError(f"{file}: config file not found")
    else:
        source = "Kafka settings"
    known = {f.name for f in fields(KafkaSettings)}
    for key, value in overrides.items():
        if key not in known:
            names = ", ".join(sorted(known))
            raise KafkaConfigError(f"unknown Kafka setting {key!r} (known: {names})")
        if value is not None:
            values[key] = value
    try:
        return KafkaSettings(**values)
    except ValueError as exc:
        raise KafkaConfigError(f"{source}: {exc}") from None
