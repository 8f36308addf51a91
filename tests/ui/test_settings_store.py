"""One settings store: the settings dialog reads and writes the config file the CLI reads."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from app.model.events.settings import KafkaConfigError, load_settings, load_user_config
from app.ui.config_file import edit_config_text, update_config
from app.ui.main_window import SegmendWindow
from app.ui.settings import AppSettings, SettingsDialog

pytestmark = pytest.mark.gui

USER_FILE = """\
# my segmend settings
[kafka]
bootstrap_servers = [
  "old-a:9092",
  "old-b:9092",
]
security_protocol = "PLAINTEXT"   # keep this comment

[other]
keep = "me"
"""


def test_dialog_writes_the_config_file_the_cli_reads(window: SegmendWindow,
                                                     private_config: Path) -> None:
    private_config.parent.mkdir(parents=True)
    private_config.write_text(USER_FILE)
    window.save_settings = True
    window.settings = AppSettings.load()
    assert window.settings.kafka_servers == "old-a:9092,old-b:9092"
    dialog = window.settings_dialog()
    assert isinstance(dialog, SettingsDialog)
    assert dialog.kafka_servers.text() == "old-a:9092,old-b:9092"
    dialog.kafka_servers.setText("broker:9092")
    dialog.topic_prefix.setText("lab-")
    dialog.user.setText("proofreader-9")
    dialog.workers.setValue(3)
    dialog.accept()
    text = private_config.read_text()
    data = tomllib.loads(text)
    assert data["kafka"] == {"bootstrap_servers": "broker:9092", "topic_prefix": "lab-",
                             "security_protocol": "PLAINTEXT"}
    assert data["other"] == {"keep": "me"}  # other sections survive, and comments
    assert data["user"] == {"name": "proofreader-9"} and data["workers"] == {"count": 3}
    assert "# my segmend settings" in text and "# keep this comment" in text
    # the model's readers (the CLI's) see the dialog's values
    kafka = load_settings()
    assert kafka.bootstrap_servers == "broker:9092" and kafka.topic_prefix == "lab-"
    assert load_user_config() == load_user_config(private_config)
    assert load_user_config().user == "proofreader-9" and load_user_config().workers == 3
    assert list(private_config.parent.glob("*.tmp")) == []  # written atomically


def test_dialog_reads_what_the_cli_config_holds(private_config: Path, qtbot: Any) -> None:
    private_config.parent.mkdir(parents=True)
    private_config.write_text('[kafka]\nbootstrap_servers = "h:1"\ntopic_prefix = "t-"\n'
                              '[user]\nname = "ann"\n[workers]\ncount = 5\n')
    settings = AppSettings.load()
    assert (settings.kafka_servers, settings.topic_prefix, settings.user, settings.workers) == (
        "h:1", "t-", "ann", 5)
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    assert dialog.kafka_servers.text() == "h:1" and dialog.user.text() == "ann"
    assert dialog.workers.value() == 5
    # clearing a value removes its key: the defaults apply again
    dialog.kafka_servers.setText("")
    dialog.values().save()
    assert "bootstrap_servers" not in tomllib.loads(private_config.read_text())["kafka"]
    assert not load_settings().enabled


def test_recent_files_do_not_rewrite_the_config_file(private_config: Path,
                                                      tmp_path: Path) -> None:
    private_config.parent.mkdir(parents=True)
    private_config.write_text(USER_FILE)
    before = private_config.stat().st_mtime_ns, private_config.read_text()
    AppSettings.load().with_recent(tmp_path / "a.h5").save()
    assert (private_config.stat().st_mtime_ns, private_config.read_text()) == before
    assert AppSettings.load().recent == (str((tmp_path / "a.h5").resolve()),)


def test_a_config_file_segmend_cannot_edit_stays_as_it_was(private_config: Path) -> None:
    private_config.parent.mkdir(parents=True)
    private_config.write_text("kafka = { topic_prefix = 'x-' }\n")
    with pytest.raises(KafkaConfigError, match=r"config\.toml"):
        update_config(private_config, {("kafka", "topic_prefix"): "y-"})
    assert private_config.read_text() == "kafka = { topic_prefix = 'x-' }\n"
    private_config.write_text("[kafka\n")
    with pytest.raises(KafkaConfigError, match="not valid TOML"):
        AppSettings(user="bob").save()
    assert private_config.read_text() == "[kafka\n"
    assert AppSettings.load() == AppSettings()  # unreadable: the defaults


def test_edit_config_text_adds_replaces_and_removes_keys() -> None:
    text = "[kafka]\ntopic_prefix = 'a-'\n\n[other]\nx = 1\n"
    edited = edit_config_text(text, {("kafka", "topic_prefix"): None,
                                     ("kafka", "bootstrap_servers"): "h:1",
                                     ("user", "name"): 'o"neil'})
    assert tomllib.loads(edited) == {"kafka": {"bootstrap_servers": "h:1"},
                                     "other": {"x": 1}, "user": {"name": 'o"neil'}}


def test_the_cli_uses_the_dialogs_kafka_settings(private_config: Path, tmp_path: Path,
                                                 demo_path: Path) -> None:
    private_config.parent.mkdir(parents=True)
    AppSettings(kafka_servers="bad host", topic_prefix="p-").save(config=private_config)
    env = {"SEGMEND_CONFIG": str(private_config), "PATH": "/usr/bin:/bin",
           "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "app", "merge", str(demo_path), "1", "2"],
                          capture_output=True, text=True, env=env, check=False)
    assert done.returncode != 0
    assert str(private_config) in done.stderr and "bootstrap_servers" in done.stderr
