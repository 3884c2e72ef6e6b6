"""Constraint patterns from the service models, translated once from Java's regex dialect.

The models' patterns are Java regular expressions: Unicode properties (`\\p{L}`, `\\p{Alnum}`,
`\\p{ASCII}`) and surrogate-pair ranges for characters beyond the BMP. The `regex` module knows the
properties; the surrogate pairs are rewritten into real code-point ranges here, in one place.
SageMaker's validator (Java's `Matcher.matches()`) requires the whole value to match, so an
underscore in a job name is refused even though the pattern has no trailing `$`.
"""

from __future__ import annotations

import functools

import regex

# Java writes "every supplementary character" as the UTF-16 surrogate-pair range.
_SURROGATE_RANGES = {
    "\\uD800\\uDC00-\\uDBFF\\uDFFF": "\\U00010000-\\U0010FFFF",
}
_SIMPLE = {"[\\S\\s]*", "[\\s\\S]*"}


@functools.lru_cache(maxsize=None)
def compile_pattern(java_pattern: str):
    """Compile a model pattern; returns None for patterns that accept everything."""
    if java_pattern in _SIMPLE:
        return None
    text = java_pattern
    for java, python in _SURROGATE_RANGES.items():
        text = text.replace(java, python)
    # Java tolerates a quantifier on `$` (seen as `...)${1,128}`); it means the anchor itself.
    text = regex.sub(r"\$\{\d+,\d+\}", "$", text)
    try:
        return regex.compile(text)
    except regex.error:
        return None  # never reject a caller because we could not read the model's pattern


def matches(java_pattern: str, value: str) -> bool:
    compiled = compile_pattern(java_pattern)
    if compiled is None:
        return True
    return compiled.fullmatch(value) is not None
