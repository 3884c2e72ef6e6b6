"""What every provider shares: the store, ARNs, lookups with AWS's not-found wording, tags."""

from __future__ import annotations

import base64
import json

from emulator import errors
from emulator.context import RequestContext
from emulator.store import Resource, Store
from emulator.store.records import Page, Query


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

    def page(self, ctx: RequestContext, params: dict, sort_names: dict[str, str], **extra) -> Page:
        """One page of a List* call. `sort_names` maps the shape's SortBy values to store columns."""
        sort_by = params.get("SortBy")
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
            sort_by=sort_names.get(sort_by, "created"),
            descending=params.get("SortOrder", "Descending") == "Descending",
            limit=params.get("MaxResults") or 10,
            offset=decode_token(params.get("NextToken"), self.kind),
            **extra,
        )
        return self.store.query(query)

    def listed(self, page: Page, key: str, summaries: list[dict]) -> dict:
        result = {key: summaries}
        if page.next_offset is not None:
            result["NextToken"] = encode_token(page.next_offset, self.kind)
        return result


def encode_token(offset: int, kind: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset, "k": kind}).encode()).decode()


def decode_token(token: str | None, kind: str) -> int:
    if not token:
        return 0
    try:
        document = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = document["o"]
        if document["k"] != kind or not isinstance(offset, int) or not 0 <= offset < 2**62:
            raise ValueError(token)
    except (ValueError, KeyError, TypeError):
        raise errors.validation("Invalid pagination token: the NextToken was not issued by this operation.") from None
    return offset


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
