"""The exceptions every reader and writer in :mod:`algorithms.io` raises.

Algorithms turn these into SageMaker's answers: a training job fails with
``ClientError: <message>`` in its failure file, an inference request gets 400 (bad payload) or
415 (unsupported content type). So the messages are written for the person who sent the data:
they say where (line, record, byte offset) and what was expected.
"""

from __future__ import annotations


class DataFormatError(ValueError):
    """Input that does not follow its declared format (a caller's mistake, never ours)."""


class UnsupportedContentTypeError(DataFormatError):
    """A content type (or Accept type) that no reader/writer in the table handles (HTTP 415/406)."""

    def __init__(self, content_type: str, supported: list[str] | tuple[str, ...],
                 what: str = "content type"):
        self.content_type = content_type
        self.supported = tuple(supported)
        super().__init__(
            f"Unsupported {what} {content_type!r}; supported: {', '.join(self.supported)}")
