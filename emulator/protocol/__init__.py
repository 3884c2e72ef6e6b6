"""The wire layer: requests parsed, validated and answered from botocore's own service models."""
