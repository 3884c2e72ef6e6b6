"""k-NN, as SageMaker's `knn` image: a faiss index and its labels in `model_algo-1`."""
from algorithms.common.training import main
from algorithms.knn.algorithm import KNNSpec

main(KNNSpec())
