"""Registers our CloudFormation resource handlers with moto by importing them (see base.py for how).

Importing this package defines one handler class per resource type our templates use. Each is a
direct subclass of moto's CloudFormationModel defined after moto's own classes, so for a type moto
also implements, ours takes its place in moto's type map (the map keeps the last class per type).
"""

from moto.cloudformation import parsing  # noqa: F401  (imports moto's own handlers first)

from . import (  # noqa: F401  (imported for their classes)
    apigateway,
    autoscaling,
    awslambda,
    cloudwatch,
    codebuild,
    events,
    iam,
    kms,
    logs,
    s3,
    sagemaker,
    sns,
    ssm,
)
from .base import ResourceHandler

HANDLERS: dict[str, type[ResourceHandler]] = {
    handler.TYPE: handler
    for module in (
        apigateway,
        autoscaling,
        awslambda,
        cloudwatch,
        codebuild,
        events,
        iam,
        kms,
        logs,
        s3,
        sagemaker,
        sns,
        ssm,
    )
    for handler in vars(module).values()
    if isinstance(handler, type)
    and issubclass(handler, ResourceHandler)
    and hasattr(handler, "TYPE")
}
