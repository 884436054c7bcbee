"""The AWS adapter: the only controller code that imports boto3/botocore.

Where it sits: below `controller.reconcile` (observe and apply call it), above the neutral
`controller.model` (the state types it returns); it never imports reconcile or runtime
(import-linter `layers` contract in pyproject.toml).

- `api`: the one request path — every call (`request`), every page (`pages`, `items`), every
  retry, and the non-idempotent create that looks before it retries (`create_once`).
- `errors`: the project's small error family (throttled, denied, not found, conflict,
  invalid, server error), mapped once from botocore's `ClientError`.
- `session`: sessions and clients per account and region, and the AWS call counter.
- one module per resource kind: `packages`, `associations`, `sharing`, `tags`, `artifacts`.
"""
