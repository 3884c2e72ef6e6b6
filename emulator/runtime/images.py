"""Which image is which: SageMaker's built-in algorithm URIs map to our implementations.

Any account, region and tag of a built-in repository (`…/kmeans:1`, `…/xgboost:latest`,
`…/sagemaker-xgboost:1.7-1`) is ours; every other URI is a user image. On the process runtime a
user image runs only when it was registered as a local program folder (`--process-image`).
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
