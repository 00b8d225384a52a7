"""The emulator process: registers our CloudFormation handlers, then runs moto's server.

Started by the launcher as `python -m localaws.server --host 127.0.0.1 --port N`. The handlers must be
imported before `moto.server.main()` so that moto's CloudFormation finds them among the subclasses of
CloudFormationModel; they live in `localaws.handlers.*` (a package) because moto derives a service name
from a model class's module path and fails on a class defined in `__main__`.
"""

import os
import sys


def default_account(account: str) -> None:
    """Makes `account` the one plain credentials reach, instead of moto's 123456789012.

    moto's own MOTO_ACCOUNT_ID pins every request to one account, so credentials from
    `sts:AssumeRole` into another account would still act in it; AWS gives them the role's
    account. Patching the default keeps moto's lookup (access key -> account) for assumed roles,
    so one emulator serves several accounts, e.g. staging and prod with a cross-account profile.
    """
    import importlib

    for name in (
        "moto.core.models",
        "moto.core",
        "moto.iam.models",
        "moto.moto_server.werkzeug_app",
        "moto.moto_api._internal.models",
        "moto.moto_api._internal.responses",
    ):
        module = importlib.import_module(name)
        if hasattr(module, "DEFAULT_ACCOUNT_ID"):
            module.DEFAULT_ACCOUNT_ID = account


def settle_memory() -> None:
    """Takes what start-up loaded out of the garbage collector's sight (`gc.freeze`).

    moto's modules and, once the latency model warmed it up, its backends with AWS's managed IAM
    policies and the resource schemas: 145,000 to 354,000 objects that live as long as the
    server. Python's collector walked them all on each full collection, a quarter of a second in
    whichever request's allocations set it off (a CreateChangeSet on the critical path of an
    apply). Objects created while serving are collected as before."""
    import gc

    gc.collect()
    gc.freeze()


def main(argv: list[str] | None = None) -> None:
    # Load AWS managed IAM policies so templates can attach e.g. AmazonSageMakerFullAccess, as on AWS.
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    account = os.environ.pop("MOTO_ACCOUNT_ID", None)
    if account:
        default_account(account)

    from moto.server import main as moto_main

    import localaws.handlers  # noqa: F401  (registers the handlers)
    from localaws import (
        authorization,
        bucket_policies,
        cfn_iam,
        dispatch_cache,
        drift,
        engine,
        keep_alive,
        lambda_functions,
        lambda_runtime,
        latency,
        operations,
        revert_drift,
        runtime_bodies,
        s3_conditional_writes,
        sagemaker_fixes,
        stack_refactor,
    )

    keep_alive.install()  # before moto's server starts: it names the request handler
    dispatch_cache.install()
    engine.install()
    revert_drift.install()  # after engine, before operations (which wraps its change set APIs)
    operations.install()  # after engine: it wraps engine's change set fixes
    drift.install()
    stack_refactor.install()  # after engine and operations: it moves resources between their stacks
    cfn_iam.install()
    authorization.install()
    bucket_policies.install()
    runtime_bodies.install()
    s3_conditional_writes.install()
    sagemaker_fixes.install()
    lambda_functions.install()
    lambda_runtime.install(sys.argv[1:] if argv is None else argv)
    # Last: off unless LOCAL_AWS_LATENCY_SCALE; wraps the handlers as left, then warms moto up.
    latency.install(warm_up=True)
    settle_memory()
    moto_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
