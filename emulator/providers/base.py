"""What every provider shares: the store, ARNs, lookups with AWS's not-found wording, tags."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from emulator import errors
from emulator.context import RequestContext
from emulator.store import Resource, Store
from emulator.store.db import is_position
from emulator.store.records import Query


@dataclass(frozen=True)
class ListPage:
    """A page of a List* call: its resources, and the NextToken of the page after (None: the last)."""

    items: list[Resource]
    next_token: str | None


class Provider:
    kind: str = ""  # the ARN resource type this provider owns, e.g. "model"

    def __init__(self, store: Store, services=None):
        self.store = store
        self.services = services

    # -- lookups ------------------------------------------------------------------------------

    def find(self, ctx: RequestContext, name: str) -> Resource | None:
        return self.store.get(self.kind, ctx.account, ctx.region, name)

    def new_resource(self, ctx: RequestContext, name: str, data: dict, status: str | None = None) -> Resource:
        return Resource(self.kind, ctx.account, ctx.region, name, ctx.arn(self.kind, name), status,
                        ctx.now, ctx.now, data)

    def insert_with_tags(self, res: Resource, tags: list[dict] | None, duplicate: errors.ServiceError) -> None:
        with self.store.transaction():
            if not self.store.insert(res):
                raise duplicate
            if tags:
                self.store.put_tags(res.arn, [(t["Key"], t.get("Value", "")) for t in tags])

    # -- listing ------------------------------------------------------------------------------

    def page(self, ctx: RequestContext, params: dict, sort_names: dict[str, str], **extra) -> ListPage:
        """One page of a List* call. `sort_names` maps the shape's SortBy values to store columns."""
        sort_by = sort_names.get(params.get("SortBy"), "created")
        descending = params.get("SortOrder", "Descending") == "Descending"
        query = Query(
            kind=self.kind,
            account=ctx.account,
            region=ctx.region,
            name_contains=params.get("NameContains"),
            status=params.get("StatusEquals"),
            created_after=params.get("CreationTimeAfter"),
            created_before=params.get("CreationTimeBefore"),
            modified_after=params.get("LastModifiedTimeAfter"),
            modified_before=params.get("LastModifiedTimeBefore"),
            sort_by=sort_by,
            descending=descending,
            limit=params.get("MaxResults") or 10,
            after=self._position(params.get("NextToken"), sort_by, descending),
            **extra,
        )
        page = self.store.query(query)
        token = None if page.next_after is None else encode_token(
            {"k": self.kind, "s": sort_by, "d": descending, "a": page.next_after})
        return ListPage(page.items, token)

    def _position(self, token: str | None, sort_by: str, descending: bool) -> tuple | None:
        """Where the page a NextToken names starts; refused unless this listing issued it."""
        if not token:
            return None
        document = decode_token(token)
        after = document.get("a")
        if (document.get("k"), document.get("s"), document.get("d")) != (self.kind, sort_by, descending) \
                or not is_position(sort_by, after):
            raise invalid_token()
        return tuple(after)

    @staticmethod
    def listed(page: ListPage, key: str, summaries: list[dict]) -> dict:
        """The List* answer: its summaries, and the NextToken when more follow."""
        result = {key: summaries}
        if page.next_token is not None:
            result["NextToken"] = page.next_token
        return result


def encode_token(document: dict) -> str:
    """An opaque NextToken holding `document` (where the next page starts, and for which listing)."""
    return base64.urlsafe_b64encode(json.dumps(document, separators=(",", ":")).encode()).decode()


def decode_token(token: str) -> dict:
    try:
        document = json.loads(base64.b64decode(token.encode(), altchars=b"-_", validate=True))
    except (ValueError, RecursionError):
        raise invalid_token() from None
    if not isinstance(document, dict):
        raise invalid_token()
    return document


def invalid_token() -> errors.ServiceError:
    return errors.validation("Invalid pagination token: the NextToken was not issued by this operation.")


def copy_members(params: dict, names: tuple[str, ...]) -> dict:
    return {name: params[name] for name in names if name in params}


# A local machine's quota, in AWS's words: each instance is a container or process here.
MAX_INSTANCES = 20


def check_instances(instance_type: str, count: int, usage: str) -> None:
    if count > MAX_INSTANCES:
        raise errors.limit_exceeded(
            f"The account-level service limit '{instance_type or 'instances'} for {usage} usage' is "
            f"{MAX_INSTANCES} Instances, with current utilization of 0 Instances and a request delta of "
            f"{count} Instances. smlocal runs each instance on this machine; use fewer instances."
        )
