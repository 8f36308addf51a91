"""kafka-python, imported on first use, and the keyword arguments of its clients.

kafka-python is imported through :func:`import_kafka`, which silences the one
``DeprecationWarning`` kafka-python 3.0 raises at import on Python 3.11 and
closes the sockets it leaks on failed connection attempts.
:func:`producer_kwargs` and :func:`admin_kwargs` turn :class:`KafkaSettings`
into client options (they contain the SASL password: never log them).
"""

from __future__ import annotations

import warnings
from types import ModuleType
from typing import Any

from app.model.events.settings import KafkaSettings

__all__ = ["admin_kwargs", "import_kafka", "producer_kwargs"]

_kafka: ModuleType | None = None


def import_kafka() -> ModuleType:
    """Import kafka-python (once) and return the ``kafka`` module.

    kafka-python 3.0 calls the deprecated ``importlib.resources.read_text`` while
    importing its protocol classes; those ``DeprecationWarning`` messages are silenced
    here (import from the main thread: ``warnings.catch_warnings`` is not
    thread-safe).  It also leaves a socket open whenever a connection attempt
    fails (an unreachable broker), which surfaces as ``ResourceWarning``\\ s; the
    connect coroutine is wrapped to close the socket on failure.
    """
    global _kafka
    if _kafka is None:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore",
                message=r"(read|open)_(text|binary) is deprecated",
                category=DeprecationWarning,
            )
            import kafka
            import kafka.admin
            import kafka.errors
        _close_sockets_of_failed_connects()
        _kafka = kafka
    return _kafka


def _close_sockets_of_failed_connects() -> None:
    """Wrap kafka-python's ``KafkaNetSocket.sock_connect`` to close the socket on failure."""
    try:
        from kafka.net import inet
    except ImportError:  # kafka-python 2.x: different internals, no such leak
        return
    cls = getattr(inet, "KafkaNetSocket", None)
    original = getattr(cls, "sock_connect", None)
    if cls is None or original is None or getattr(original, "_segmend_closes_socket", False):
        return

    async def sock_connect(self: Any, net: Any, sock: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await original(self, net, sock, *args, **kwargs)
        except BaseException:
            sock.close()
            raise

    sock_connect._segmend_closes_socket = True  # type: ignore[attr-defined]
    cls.sock_connect = sock_connect


def _supported(kwargs: dict[str, Any], client_class: Any) -> dict[str, Any]:
    known = getattr(client_class, "DEFAULT_CONFIG", None)
    if not isinstance(known, dict):
        return kwargs
    return {k: v for k, v in kwargs.items() if k in known}


def _common_kwargs(settings: KafkaSettings) -> dict[str, Any]:
    connect_ms = int(settings.connect_timeout_s * 1000)
    request_ms = int(settings.request_timeout_s * 1000)
    kwargs: dict[str, Any] = {
        "bootstrap_servers": [
            f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in settings.bootstrap_hosts()
        ],
        "client_id": settings.client_id,
        "request_timeout_ms": request_ms,
        "bootstrap_timeout_ms": connect_ms,  # kafka-python 3
        "api_version_auto_timeout_ms": connect_ms,  # kafka-python 2
        "reconnect_backoff_ms": 100,
        "reconnect_backoff_max_ms": int(settings.max_backoff_s * 1000),
        "security_protocol": settings.security_protocol,
    }
    if settings.sasl_mechanism is not None:
        kwargs["sasl_mechanism"] = settings.sasl_mechanism
        kwargs["sasl_plain_username"] = settings.sasl_username
        kwargs["sasl_plain_password"] = settings.sasl_password
    for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        if getattr(settings, name) is not None:
            kwargs[name] = getattr(settings, name)
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        kwargs["ssl_check_hostname"] = settings.ssl_check_hostname
    return kwargs


def producer_kwargs(settings: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for ``kafka.KafkaProducer`` (contains the password: never log them).

    Ordered, acknowledged delivery: ``acks="all"``, one request in flight per
    connection, idempotence where the installed kafka-python supports it,
    bounded retries and short timeouts so that an unreachable broker is
    noticed in seconds.  Only options the installed version knows are kept.

    Raises
    ------
    ValueError
        If Kafka is off (``bootstrap_servers`` is None).
    """
    if not settings.enabled:
        raise ValueError("Kafka is off: bootstrap_servers is not set")
    request_ms = int(settings.request_timeout_s * 1000)
    kwargs = _common_kwargs(settings)
    kwargs.update(
        acks="all",
        retries=5,
        max_in_flight_requests_per_connection=1,
        enable_idempotence=True,
        max_block_ms=request_ms,
        delivery_timeout_ms=2 * request_ms + 1000,
        linger_ms=0,
    )
    return _supported(kwargs, import_kafka().KafkaProducer)


def admin_kwargs(settings: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for ``kafka.KafkaAdminClient`` (contains the password)."""
    if not settings.enabled:
        raise ValueError("Kafka is off: bootstrap_servers is not set")
    return _supported(_common_kwargs(settings), import_kafka().KafkaAdminClient)
