"""The embedded local AWS endpoint: our own SSM service, with moto for S3, STS, EC2 and IAM.

Used by `ssm-gitops local`, `ssm-gitops demo`, the tests and the benchmarks; never by the
controller's own code paths.
"""

from controller.local import hooks
from controller.local.server import LocalAWS

__all__ = ["LocalAWS", "hooks"]
