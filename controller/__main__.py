"""`python -m controller` is the same as the `ssm-gitops` command."""

from controller.cli import main

raise SystemExit(main())
