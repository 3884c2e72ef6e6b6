"""Tags on every SageMaker resource by ARN: AddTags, ListTags, DeleteTags."""

from __future__ import annotations

from emulator import errors
from emulator.providers.base import Provider, decode_token, encode_token

MAX_TAGS = 50


class TagsProvider(Provider):
    kind = "tags"

    def add_tags(self, ctx, params):
        arn = self._existing(params["ResourceArn"])
        tags = params["Tags"]
        for tag in tags:
            if tag["Key"].lower().startswith("aws:"):
                raise errors.validation(f"Tag keys beginning with 'aws:' are reserved: {tag['Key']}.")
        with self.store.transaction():
            keys = {k for k, _ in self.store.tags(arn)} | {t["Key"] for t in tags}
            if len(keys) > MAX_TAGS:
                raise errors.limit_exceeded(
                    f"A resource can have at most {MAX_TAGS} tags; {arn} would have {len(keys)}."
                )
            self.store.put_tags(arn, [(t["Key"], t.get("Value", "")) for t in tags])
        return {"Tags": tags}

    def list_tags(self, ctx, params):
        arn = self._existing(params["ResourceArn"])
        tags = self.store.tags(arn)
        offset = decode_token(params.get("NextToken"), self.kind)
        limit = params.get("MaxResults") or 50
        result = {"Tags": [{"Key": k, "Value": v} for k, v in tags[offset:offset + limit]]}
        if offset + limit < len(tags):
            result["NextToken"] = encode_token(offset + limit, self.kind)
        return result

    def delete_tags(self, ctx, params):
        self.store.delete_tags(self._existing(params["ResourceArn"]), params["TagKeys"])
        return {}

    def _existing(self, arn: str) -> str:
        if self.store.get_by_arn(arn) is None:
            raise errors.validation(f'Could not find resource "{arn}".')
        return arn
