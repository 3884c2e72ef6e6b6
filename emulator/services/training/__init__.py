"""Training jobs: channels in, the container contract, artifacts out."""

from emulator.services.training.service import TrainingService

__all__ = ["TrainingService"]
