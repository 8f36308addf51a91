"""Kafka events in DVID's mutation-log format: messages, outbox, blob store, sender.

A mutation builds its messages (:mod:`~app.model.events.messages`), encodes
them (:mod:`~app.model.events.encoding`, which may store a big field in the
blob store, :mod:`~app.model.events.blobstore`), and appends them to the
outbox (:mod:`~app.model.events.outbox`) in the transaction that records the
mutation.  An :class:`~app.model.events.sender.OutboxSender` thread publishes
the outbox in order, at least once, whenever a broker is reachable
(:mod:`~app.model.events.kafka_link`, configured by
:mod:`~app.model.events.settings`): the labels' events to the dataset's topic,
those of its other data instances (:mod:`~app.model.events.instances`) to
theirs.  :mod:`~app.model.events.outbox_view` reads a dataset's outbox and
blobs from outside its writer.

Import names from their defining modules; importing this package imports
nothing, and nothing here imports kafka-python until a broker is configured.
"""
