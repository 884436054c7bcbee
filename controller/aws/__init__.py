"""The AWS adapter: the only controller code that imports boto3/botocore.

Sessions per account and region, retries, call counting, one module per resource kind,
and the project's small error family (throttled, denied, not found, conflict, invalid).
"""
