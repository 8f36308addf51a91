"""User settings (Kafka, user name, workers, recent files) kept with ``QSettings``.

Stored under organisation and application ``"segmend"``.  Tests point
``QSettings`` elsewhere (``QSettings.setPath``) or pass their own ``QSettings``
(e.g. an ini file) to :meth:`AppSettings.load` / :meth:`AppSettings.save`.
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
    def load(cls, store: QSettings | None = None) -> AppSettings:
        """Read the settings (defaults for anything missing or malformed)."""
        s = store if store is not None else qsettings()
        value: Any = s.value("recent/files", [])
        if isinstance(value, str):
            recent: list[Any] = [value] if value else []
        else:
            recent = list(value or [])
        return cls(
            kafka_servers=str(s.value("kafka/bootstrap_servers", "") or ""),
            topic_prefix=str(s.value("kafka/topic_prefix", "") or ""),
            user=str(s.value("user/name", "") or ""),
            workers=_int(s.value("workers/count", 0)),
            recent=tuple(str(p) for p in recent)[:MAX_RECENT],
        )

    def save(self, store: QSettings | None = None) -> None:
        """Write the settings."""
        s = store if store is not None else qsettings()
        s.setValue("kafka/bootstrap_servers", self.kafka_servers)
        s.setValue("kafka/topic_prefix", self.topic_prefix)
        s.setValue("user/name", self.user)
        s.setValue("workers/count", int(self.workers))
        s.setValue("recent/files", list(self.recent))
        s.sync()

    def with_recent(self, path: str | Path) -> AppSettings:
        """These settings with ``path`` first among the recent files."""
        text = str(Path(path).expanduser().resolve())
        recent = (text, *(p for p in self.recent if p != text))[:MAX_RECENT]
        return replace(self, recent=recent)


def _int(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


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
        note = QLabel("These apply to the next dataset opened.  Other Kafka options (SASL, TLS) "
                      "come from the config file (~/.config/segmend/config.toml).", self)
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
