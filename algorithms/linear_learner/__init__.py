"""SageMaker's built-in Linear Learner (`linear-learner:1`) as a container-contract program."""
