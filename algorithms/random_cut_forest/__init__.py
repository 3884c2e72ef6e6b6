"""Random Cut Forest, as SageMaker's `randomcutforest` image: anomaly scores from a forest of random
cut trees grown on reservoir samples; the forest is a numpy `.npz` file `model_algo-1`."""
