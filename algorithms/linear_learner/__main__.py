"""Linear Learner, as SageMaker's `linear-learner` image: `model_algo-1` is a zip holding an
MXNet checkpoint (`fc0_weight`, `fc0_bias`) and the decision threshold."""
from algorithms.common.training import main
from algorithms.linear_learner.algorithm import LinearLearnerSpec

main(LinearLearnerSpec())
