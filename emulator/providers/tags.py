"""Tags on every SageMaker resource by ARN: AddTags, ListTags, DeleteTags."""

from __future__ import annotations

from emulator import errors
from emulator.providers.base import Provider, decode_token, encode_token, invalid_token

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
        limit = params.get("MaxResults") or 50
        rows = self.store.tags_after(arn, self._after(params.get("NextToken"), arn), limit + 1)
        result = {"Tags": [{"Key": key, "Value": value} for _, key, value in rows[:limit]]}
        if len(rows) > limit:  # the position is the last tag's number: a tag deleted meanwhile shifts nothing
            result["NextToken"] = encode_token({"k": self.kind, "r": arn, "a": rows[limit - 1][0]})
        return result

    def _after(self, token: str | None, arn: str) -> int:
        if not token:
            return 0
        document = decode_token(token)
        seq = document.get("a")
        if (document.get("k"), document.get("r")) != (self.kind, arn) or type(seq) is not int or not 0 <= seq < 2**62:
            raise invalid_token()
        return seq

    def delete_tags(self, ctx, params):
        self.store.delete_tags(self._existing(params["ResourceArn"]), params["TagKeys"])
        return {}

    def _existing(self, arn: str) -> str:
        if self.store.get_by_arn(arn) is None:
            raise errors.validation(f'Could not find resource "{arn}".')
        return arn
