"""ssm-gitops: a GitOps controller for AWS Systems Manager Distributor.

The pipeline of one reconcile pass, one package per stage:

    spec (load YAML) -> build (zips + manifests) -> aws (observe live SSM)
        -> reconcile.plan (pure diff) -> reconcile.apply -> runtime (status, metrics)

`local` is the embedded AWS endpoint used by the demo, the tests and benchmarks; the
controller's own code never imports it.
"""

__version__ = "0.1.0"
