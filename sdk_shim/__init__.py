"""Helpers that make unchanged client code (boto3, the SageMaker Python SDK) use smlocal."""
