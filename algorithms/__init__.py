"""SageMaker's built-in algorithms, re-implemented as container-contract programs.

Each package (`kmeans`, `linear_learner`, `xgboost`, ...) runs as `python -m algorithms.<name>
train|serve`, under /opt/ml in a container or under $SMLOCAL_OPT_ML as a local process. They share
`io/` (data formats) and `common/` (hyperparameters, the train and serve programs, logs, multi-host
gathering). Nothing here imports the emulator.
"""
