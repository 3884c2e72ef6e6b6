"""Create-time checks of what a container is given (training jobs, models), in AWS's words.

An image must exist where AWS would pull it from: an ECR image of another region than the call's,
or a built-in algorithm's tag AWS never published, is refused before anything runs. And every
environment value must be something a process environment can hold: a NUL character or an
unpaired UTF-16 surrogate (both valid JSON) would otherwise fail the job or endpoint later,
obscurely, when the container is started.
"""

from __future__ import annotations

from emulator import errors
from emulator.runtime.images import ecr_reference, published


def check_image(uri: str, region: str, role: str, cross_region: str) -> None:
    """`cross_region` is the operation's wording for an image of another region, with {uri},
    {image_region} and {region} in it."""
    reference = ecr_reference(uri)
    if reference is None:
        return
    if reference.region != region:
        raise errors.validation(cross_region.format(uri=uri, image_region=reference.region, region=region))
    if not published(reference):
        raise errors.validation(
            f"Cannot find the requested image: {uri} with tag: {reference.tag} and digest: null. Please check if "
            f"your ECR image exists and role {role} has proper pull permissions for SageMaker: "
            "ecr:BatchCheckLayerAvailability, ecr:BatchGetImage, ecr:GetDownloadUrlForLayer")


TRAINING_CROSS_REGION = "Invalid region {image_region} in image URI {uri}. Please provide an image URI in region {region}."
MODEL_CROSS_REGION = ('Region of "{uri}" does not match expected region of {region}. Cross region ECR image pulls '
                      "are not allowed.")


def check_environment(environment: dict | None, where: str) -> None:
    for key, value in (environment or {}).items():
        if isinstance(value, str) and not _process_can_hold(value):
            raise errors.validation(
                f"The value of environment variable {key} in {where} holds a NUL character or an unpaired "
                "surrogate, which no process environment can carry. Remove it or encode the value "
                "(for example as base64).")


def _process_can_hold(value: str) -> bool:
    if "\0" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
