"""SageMaker's built-in k-NN (the `knn` image) on faiss: algorithm.py (hyperparameters, sampling,
training, the serving columns) and index.py (dimension reduction, the faiss index, voting, the
`model_algo-1` artifact)."""
