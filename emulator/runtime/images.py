"""Which image is which: SageMaker's built-in algorithm URIs map to our implementations.

Any account and region of a built-in repository, with a tag AWS publishes (`…/kmeans:1`,
`…/xgboost:latest`, `…/sagemaker-xgboost:1.7-1`), is ours; every other URI is a user image. On
the process runtime a user image runs only when it was registered as a local program folder
(`--process-image`). What AWS refuses at Create (a tag it never published, an ECR image of
another region) is told by `ecr_reference` and `published`; providers word the refusal.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

# repository → algorithms/<package>
BUILTIN_REPOSITORIES = {
    "kmeans": "kmeans",
    "linear-learner": "linear_learner",
    "pca": "pca",
    "knn": "knn",
    "factorization-machines": "factorization_machines",
    "randomcutforest": "random_cut_forest",
    "xgboost": "xgboost",
    "sagemaker-xgboost": "xgboost",
}
BUILTIN_IMAGE = "smlocal/algorithms:latest"  # the Docker image that carries algorithms/

# The tags AWS publishes, as the SageMaker SDK's image_uri_config lists them: `1` (and the old
# `latest`) for the first-party algorithms, the framework versions for sagemaker-xgboost (the
# oldest ones also as `<version>-cpu-py3`).
_XGBOOST_VERSIONS = ("0.90-1", "0.90-2", "1.0-1", "1.2-1", "1.2-2", "1.3-1", "1.5-1", "1.7-1", "3.0-5")
PUBLISHED_TAGS = {repository: frozenset({"1", "latest"}) for repository in BUILTIN_REPOSITORIES}
PUBLISHED_TAGS["sagemaker-xgboost"] = frozenset(
    _XGBOOST_VERSIONS + tuple(f"{v}-cpu-py3" for v in _XGBOOST_VERSIONS))

_ECR_URI = re.compile(r"^\d{12}\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
                      r"(?P<repo>[a-z0-9._/-]+?)(?::(?P<tag>[\w.-]+)|@(?P<digest>sha256:[0-9a-f]+))?$")


@dataclass(frozen=True)
class EcrReference:
    """An image URI in an ECR registry: `<account>.dkr.ecr.<region>.amazonaws.com/<repo>[:tag|@digest]`."""

    region: str
    repository: str
    tag: str | None
    digest: str | None


def ecr_reference(uri: str) -> EcrReference | None:
    match = _ECR_URI.match(uri.strip())
    if match is None:
        return None
    return EcrReference(match["region"], match["repo"], match["tag"], match["digest"])


def published(reference: EcrReference) -> bool:
    """False only for a built-in repository's tag that AWS never published."""
    tags = PUBLISHED_TAGS.get(reference.repository)
    return tags is None or reference.tag is None or reference.tag in tags

_ECR = re.compile(
    r"^(?:\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?/)?(?P<repo>[a-z0-9._/-]+?)(?::[\w.-]+|@sha256:[0-9a-f]+)?$"
)


@dataclass(frozen=True)
class ImageTarget:
    uri: str
    algorithm: str | None = None  # algorithms/<package> for a built-in image
    program_dir: Path | None = None  # a local folder with `train`/`serve`, for the process runtime

    @property
    def builtin(self) -> bool:
        return self.algorithm is not None


def resolve(uri: str, process_images: dict[str, str] | None = None) -> ImageTarget:
    match = _ECR.match(uri.strip())
    if match and "amazonaws.com" in uri:
        algorithm = BUILTIN_REPOSITORIES.get(match.group("repo"))
        if algorithm:
            return ImageTarget(uri, algorithm=algorithm)
    for pattern, folder in (process_images or {}).items():
        if uri == pattern or fnmatch.fnmatchcase(uri, pattern):
            return ImageTarget(uri, program_dir=Path(folder))
    return ImageTarget(uri)
