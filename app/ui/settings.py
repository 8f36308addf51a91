"""User settings: Kafka, user name and workers in segmend's config file; recent files.

What the CLI also uses (Kafka servers and topic prefix, the user name, the
worker count) lives in the one config file the CLI reads,
``$SEGMEND_CONFIG`` or ``~/.config/segmend/config.toml`` (sections
``[kafka]``, ``[user]``, ``[workers]``); the dialog edits it in place
(:mod:`app.ui.config_file`).  Only the recent files, a preference of the
window, stay in ``QSettings`` (organisation and application ``"segmend"``).
Tests point ``QSettings`` elsewhere (``QSettings.setPath``) or pass their own
store, and pass the config file's path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from qtpy.QtCore import QSettings
from qtpy.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.model.errors import SegmendError
from app.model.events.settings import (
    UserConfig,
    default_config_path,
    load_user_config,
    read_config,
)
from app.ui.config_file import Key, Value, update_config

ORGANISATION = "segmend"
APPLICATION = "segmend"
MAX_RECENT = 10


def qsettings() -> QSettings:
    """segmend's default settings store."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANISATION,
                     APPLICATION)


def default_user() -> str:
    """The login name, used when no user name is set."""
    return os.environ.get("USER") or os.environ.get("USERNAME") or ""


@dataclass(frozen=True)
class AppSettings:
    """What the settings dialog edits.

    Attributes
    ----------
    kafka_servers : str
        Kafka bootstrap servers ``host:port[,host:port]``; empty = events off.
    topic_prefix : str
        Prefix of the Kafka topic name.
    user : str
        Recorded in mutation records and events (empty: the login name).
    workers : int
        Worker threads (0: one per core).
    recent : tuple of str
        Recently opened files, newest first.
    """

    kafka_servers: str = ""
    topic_prefix: str = ""
    user: str = ""
    workers: int = 0
    recent: tuple[str, ...] = field(default_factory=tuple)

    @property
    def effective_user(self) -> str:
        """The user name to record."""
        return self.user or default_user()

    @classmethod
    def load(cls, store: QSettings | None = None, config: Path | None = None) -> AppSettings:
        """Read the settings: the config file's (``config``, default
        :func:`~app.model.events.settings.default_config_path`) and the recent files
        (``store``, default :func:`qsettings`).  A file that cannot be read or
        holds bad values gives the defaults (the CLI names the problem)."""
        s = store if store is not None else qsettings()
        value: Any = s.value("recent/files", [])
        if isinstance(value, str):
            recent: list[Any] = [value] if value else []
        else:
            recent = list(value or [])
        path = config if config is not None else default_config_path()[0]
        try:
            kafka = read_config(path).get("kafka", {})
            user = load_user_config(path)
        except SegmendError:
            kafka, user = {}, UserConfig()
        servers = kafka.get("bootstrap_servers", "") if isinstance(kafka, dict) else ""
        prefix = kafka.get("topic_prefix", "") if isinstance(kafka, dict) else ""
        if isinstance(servers, list):
            servers = ",".join(str(v) for v in servers)
        return cls(
            kafka_servers=servers if isinstance(servers, str) else "",
            topic_prefix=prefix if isinstance(prefix, str) else "",
            user=user.user,
            workers=user.workers,
            recent=tuple(str(p) for p in recent)[:MAX_RECENT],
        )

    def config_values(self) -> dict[Key, Value]:
        """The config file's keys for these settings (None: the key is removed)."""
        return {
            ("kafka", "bootstrap_servers"): self.kafka_servers or None,
            ("kafka", "topic_prefix"): self.topic_prefix or None,
            ("user", "name"): self.user or None,
            ("workers", "count"): int(self.workers) or None,
        }

    def save(self, store: QSettings | None = None, config: Path | None = None) -> None:
        """Write the settings: the recent files to ``store``, the rest to the config file
        (only if they changed there; atomically, keeping the file's other contents).

        Raises
        ------
        SegmendError
            If the config file cannot be read, parsed or written (it stays as it was).
        """
        s = self.save_recent(store)
        path = config if config is not None else default_config_path()[0]
        current = AppSettings.load(s, path)
        if replace(current, recent=self.recent) != self:
            update_config(path, self.config_values())

    def save_recent(self, store: QSettings | None = None) -> QSettings:
        """Write the recent files only (to ``store``, default :func:`qsettings`); returns
        the store."""
        s = store if store is not None else qsettings()
        s.setValue("recent/files", list(self.recent))
        s.sync()
        return s

    def with_recent(self, path: str | Path) -> AppSettings:
        """These settings with ``path`` first among the recent files."""
        text = str(Path(path).expanduser().resolve())
        recent = (text, *(p for p in self.recent if p != text))[:MAX_RECENT]
        return replace(self, recent=recent)


class SettingsDialog(QDialog):
    """Edit :class:`AppSettings`.  Non-modal; read :meth:`values` after ``accepted``."""

    def __init__(self, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("segmend settings")
        self._settings = settings
        self.kafka_servers = QLineEdit(settings.kafka_servers, self)
        self.kafka_servers.setPlaceholderText("host:port[,host:port]  (empty: events stay local)")
        self.topic_prefix = QLineEdit(settings.topic_prefix, self)
        self.user = QLineEdit(settings.user, self)
        self.user.setPlaceholderText(default_user() or "user name")
        self.workers = QSpinBox(self)
        self.workers.setRange(0, 256)
        self.workers.setSpecialValueText("one per core")
        self.workers.setValue(settings.workers)
        form = QFormLayout()
        form.addRow("Kafka bootstrap servers", self.kafka_servers)
        form.addRow("Kafka topic prefix", self.topic_prefix)
        form.addRow("User name (goes into events)", self.user)
        form.addRow("Worker threads", self.workers)
        note = QLabel(f"Saved in {default_config_path()[0]}, which the segmend commands read "
                      "too; they apply to the next dataset opened.  Other Kafka options "
                      "(SASL, TLS) are set in that file.", self)
        note.setWordWrap(True)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(buttons)

    def values(self) -> AppSettings:
        """The settings as edited."""
        return replace(
            self._settings,
            kafka_servers=self.kafka_servers.text().strip(),
            topic_prefix=self.topic_prefix.text().strip(),
            user=self.user.text().strip(),
            workers=int(self.workers.value()),
        )
