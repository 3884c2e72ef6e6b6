"""smlocal: a local, offline Amazon SageMaker.

One service on one port speaks SageMaker's and SageMaker Runtime's wire protocols and, through
moto, S3, CloudWatch Logs, STS and IAM, so that AWS_ENDPOINT_URL redirects unchanged programs.
"""

__version__ = "0.1.0"
