"""What every built-in algorithm shares: its contract paths, hyperparameter parsing, the training
and serving programs, SageMaker-style log lines, and gathering data across hosts."""
