"""K-Means, as SageMaker's `kmeans` image: centroids in an MXNet NDArray file `model_algo-1`."""
