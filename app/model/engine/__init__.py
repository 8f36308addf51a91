"""The mutation engine, in parts: the façade (:mod:`.engine`), the block
scheduler, the commit pipeline, the counters, the history, crash recovery and
reindex, each its own module."""

from app.model.engine.engine import MutationEngine
from app.model.engine.signals import EngineSignals
from app.model.mutations.checks import MAX_LABEL

__all__ = ["MAX_LABEL", "EngineSignals", "MutationEngine"]
