"""The AWS services smlocal embeds through moto (S3, CloudWatch Logs, STS, IAM, CloudWatch)."""
