"""The two failure kinds a built-in algorithm reports in /opt/ml/output/failure, as SageMaker's do:
`ClientError: …` for the caller's mistake (hyperparameters, data, channels), `AlgorithmError: …`
for ours."""


class ClientError(Exception):
    """The request or the data is wrong; the message tells the user what to change."""


class AlgorithmError(Exception):
    """Something failed inside the algorithm itself."""
