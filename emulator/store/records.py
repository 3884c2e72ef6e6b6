"""Records are dataclasses; their `data` holds the Describe output in the shapes' wire names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Resource:
    kind: str  # "model", "endpoint-config", "endpoint", "training-job", ...
    account: str
    region: str
    name: str
    arn: str
    status: str | None
    created: float
    modified: float
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Page:
    items: list[Resource]
    next_after: tuple | None  # the last item's sort values when more follow (see Query.after)


@dataclass(frozen=True)
class Query:
    """What a List* call asks for, in store terms."""

    kind: str
    account: str
    region: str
    name_contains: str | None = None
    status: str | None = None
    created_after: float | None = None
    created_before: float | None = None
    modified_after: float | None = None
    modified_before: float | None = None
    sort_by: str = "created"  # one of Store.SORT_COLUMNS
    descending: bool = True
    limit: int = 10
    after: tuple | None = None  # sort values (Store.SORT_COLUMNS[sort_by]) the page starts after
    data_equals: tuple[tuple[str, str], ...] = ()  # (top-level data key, value) pairs
    fields: tuple[str, ...] | None = None  # data members List* needs (None: the whole document)
