"""The emulator process: registers our CloudFormation handlers, then runs moto's server.

Started by the launcher as `python -m localaws.server --host 127.0.0.1 --port N`. The handlers must be
imported before `moto.server.main()` so that moto's CloudFormation finds them among the subclasses of
CloudFormationModel; they live in `localaws.handlers.*` (a package) because moto derives a service name
from a model class's module path and fails on a class defined in `__main__`.
"""

import os
import sys


def main(argv: list[str] | None = None) -> None:
    # Load AWS managed IAM policies so templates can attach e.g. AmazonSageMakerFullAccess, as on AWS.
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

    from moto.server import main as moto_main

    import localaws.handlers  # noqa: F401  (registers the handlers)
    from localaws import bucket_policies, engine

    engine.install()
    bucket_policies.install()
    moto_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
