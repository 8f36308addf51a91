"""The case table: every category's cases, in the campaign's order."""

from __future__ import annotations

from collections.abc import Iterable

from .apply import apply_cases
from .args import argument_cases
from .bases import Facts
from .build import build_cases
from .concurrency import concurrency_cases
from .config_kafka import config_cases, kafka_cases
from .edits import edit_result_cases
from .faults import fault_cases
from .files import file_cases
from .kinds import Case
from .pipes_readonly import pipe_cases, readonly_cases


def all_cases(facts: Facts) -> list[Case]:
    """Every case of the campaign, in order."""
    groups: list[Iterable[Case]] = [
        argument_cases(facts.lf),
        edit_result_cases(facts),
        build_cases(facts),
        file_cases(facts),
        apply_cases(facts.lf),
        config_cases(facts.lf),
        kafka_cases(facts.lf),
        pipe_cases(facts),
        readonly_cases(facts),
        concurrency_cases(facts.lf),
        fault_cases(facts),
    ]
    return [case for group in groups for case in group]
