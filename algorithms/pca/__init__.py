"""PCA, as SageMaker's `pca` image: principal components in an MXNet NDArray dict `model_algo-1`."""
