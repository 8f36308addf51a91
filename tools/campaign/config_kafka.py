"""The ``config`` cases (a bad ``config.toml``) and the ``kafka`` cases (a closed
port, bad broker names)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from .bases import LabelFacts, rle_bytes
from .checks import check_all, merged, quick, reserved, split_into, verified
from .harness import Run
from .kinds import Case, cli, writes

# ---------------------------------------------------------------------------- config


def config_cases(lf: LabelFacts) -> Iterator[Case]:
    """A bad ``~/.config/segmend/config.toml``: edits are refused, changing nothing."""
    cat = "config"
    t, v = lf.pairs[7]
    closed = 'bootstrap_servers = "127.0.0.1:1"\n'
    bad = {
        "connect-timeout-inf": closed + "connect_timeout_s = inf\n",
        "connect-timeout-nan": closed + "connect_timeout_s = nan\n",
        "request-timeout-neg": closed + "request_timeout_s = -1\n",
        "max-backoff-zero": "max_backoff_s = 0\n",
        "max-backoff-inf": closed + "max_backoff_s = inf\n",
        "timeout-string": 'connect_timeout_s = "5"\n',
        "unknown-key": 'bootstrap_server = "127.0.0.1:1"\n',
        "servers-empty": 'bootstrap_servers = ""\n',
        "servers-empty-list": "bootstrap_servers = []\n",
        "servers-mixed-list": 'bootstrap_servers = ["127.0.0.1:1", 5]\n',
        "servers-no-port": 'bootstrap_servers = "localhost"\n',
        "security-bogus": closed + 'security_protocol = "TLS"\n',
        "sasl-no-password": closed + 'security_protocol = "SASL_SSL"\nsasl_mechanism = "PLAIN"\n'
        'sasl_username = "u"\n',
        "password-env-unset": 'sasl_password_env = "SEGMEND_CAMPAIGN_UNSET"\n',
        "topic-prefix-slash": 'topic_prefix = "a/b"\n',
        "check-hostname-string": 'ssl_check_hostname = "yes"\n',
    }
    for name, body in bad.items():
        yield cli(cat, name, ["merge", "{f}", str(t), str(v)], setup=_config("[kafka]\n" + body))
    yield cli(cat, "not-toml", ["merge", "{f}", str(t), str(v)], setup=_config("[kafka\nx = \n"))
    yield cli(
        cat, "kafka-not-table", ["merge", "{f}", str(t), str(v)], setup=_config("kafka = 3\n")
    )
    yield cli(
        cat, "not-utf8", ["merge", "{f}", str(t), str(v)], setup=_config(b"\xff\xfe[kafka]\n")
    )
    yield cli(cat, "config-is-folder", ["merge", "{f}", str(t), str(v)], setup=_config(None))
    yield cli(
        cat,
        "status-connect-timeout-nan",
        ["events", "status", "{f}"],
        setup=_config("[kafka]\n" + closed + "connect_timeout_s = nan\n"),
    )
    yield cli(
        cat,
        "empty-section",
        ["merge", "{f}", str(t), str(v)],
        expect="ok",
        setup=_config("[kafka]\n"),
        check=merged(t, [v]),
    )
    yield cli(
        cat,
        "other-section",
        ["merge", "{f}", str(t), str(v)],
        expect="any",
        setup=_config("[display]\ntheme = 'dark'\n"),
        check=merged(t, [v]),
    )
    yield cli(
        cat,
        "closed-port",
        ["merge", "{f}", str(t), str(v)],
        expect="ok",
        setup=_config("[kafka]\n" + closed + "connect_timeout_s = 0.5\n"),
        check=check_all(merged(t, [v]), quick),
    )


def _config(body: str | bytes | None) -> Callable[[Run], None]:
    """A setup writing ``~/.config/segmend/config.toml`` (None: a folder there)."""

    def setup(r: Run) -> None:
        path = r.home / ".config" / "segmend" / "config.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        if body is None:
            path.mkdir()
        else:
            path.write_bytes(body.encode() if isinstance(body, str) else body)

    return setup


# ---------------------------------------------------------------------------- Kafka


def kafka_cases(lf: LabelFacts) -> Iterator[Case]:
    """Kafka on a closed port never blocks or fails an edit; bad broker names are refused."""
    cat = "kafka"
    t, v = lf.pairs[8]
    k = ["--kafka", "127.0.0.1:1"]
    yield cli(
        cat,
        "merge-closed-port",
        ["merge", "{f}", str(t), str(v), *k],
        expect="ok",
        check=check_all(merged(t, [v]), quick),
    )
    yield cli(
        cat,
        "split-closed-port",
        ["split", "{f}", str(lf.split_target), "--rles", "{d}/aux/s.rle", *k],
        expect="ok",
        setup=writes("s.rle", rle_bytes(lf.split_spans)),
        check=check_all(split_into(lf.split_target, lf.split_voxels), quick),
    )
    yield cli(
        cat,
        "nextlabel-closed-port",
        ["nextlabel", "{f}", "2", *k],
        expect="ok",
        check=check_all(reserved(2), quick),
    )
    yield cli(
        cat,
        "undo-closed-port",
        ["undo", "{f}", *k],
        base="edited",
        expect="ok",
        check=check_all(verified, quick),
    )
    yield cli(
        cat,
        "merge-ipv6-closed-port",
        ["merge", "{f}", str(t), str(v), "--kafka", "[::1]:1"],
        expect="ok",
        check=check_all(merged(t, [v]), quick),
    )
    yield cli(
        cat,
        "status-closed-port",
        ["events", "status", "{f}", *k],
        base="edited",
        expect="ok",
        readonly=True,
    )
    yield cli(
        cat, "flush-closed-port", ["events", "flush", "{f}", *k, "--timeout", "2"], base="edited"
    )
    for name, broker in (
        ("no-port", "localhost"),
        ("port-zero", "127.0.0.1:0"),
        ("port-99999", "127.0.0.1:99999"),
        ("empty", ""),
        ("half-list", "127.0.0.1:1,"),
        ("spaces", "a b:1"),
    ):
        yield cli(cat, f"merge-broker-{name}", ["merge", "{f}", str(t), str(v), "--kafka", broker])
    yield cli(
        cat,
        "merge-topic-prefix-bad",
        ["merge", "{f}", str(t), str(v), *k, "--topic-prefix", "bad topic!"],
    )
    yield cli(
        cat,
        "merge-topic-prefix-long",
        ["merge", "{f}", str(t), str(v), *k, "--topic-prefix", "p" * 300],
    )
