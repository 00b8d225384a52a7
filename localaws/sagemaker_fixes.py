"""SageMaker answers that moto gets wrong in a way the tool sees.

UpdateModelPackage: moto replaces the package's customer metadata, approval status and
approval description with what the request carries (absent: cleared), so approving a package
(a request without metadata) erases its `classes` metadata, which the router and the plan read,
and a metadata-only update clears its approval. On AWS the request's
`CustomerMetadataProperties` are added to the package's (keys it names are replaced),
`CustomerMetadataPropertiesToRemove` removes keys, and an absent `ApprovalDescription` leaves
the description as it was (SageMaker API reference, UpdateModelPackage).

StartPipelineExecution: moto starts a new execution for every call, ignoring
`ClientRequestToken`. On AWS the token makes the call idempotent ("An idempotent operation
completes no more than once", SageMaker API reference, StartPipelineExecution): a repeated
token answers the execution it started. The retrain function relies on it to start one run per
batch however many invocations race; here a repeated token of the pipeline answers the first
execution's ARN, checked and recorded under a lock (moto's server is threaded).
"""

import threading
from typing import Any

_STARTS = threading.Lock()


def install() -> None:
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import SageMakerModelBackend

    def update_model_package(
        self: Any,
        model_package_arn: str,
        model_approval_status: Any,
        approval_description: Any,
        customer_metadata_properties: Any,
        customer_metadata_properties_to_remove: Any,
        additional_inference_specifications_to_add: Any,
    ) -> str:
        mapped = self.model_package_name_mapping.get(model_package_arn, model_package_arn)
        package = self.model_packages.get(mapped)
        if package is None:
            raise ValidationError(f"Model package {model_package_arn} not found")
        # What the request leaves out stays as it was.
        if model_approval_status is not None:
            package.set_model_approval_status(model_approval_status)
        if approval_description is not None:
            package.approval_description = approval_description
        merged = {**(package.customer_metadata_properties or {}), **(customer_metadata_properties or {})}
        for key in customer_metadata_properties_to_remove or []:
            merged.pop(key, None)
        package.customer_metadata_properties = merged or None
        package.add_additional_inference_specifications(additional_inference_specifications_to_add)
        package.modifications_done()
        return package.arn

    SageMakerModelBackend.update_model_package = update_model_package

    start_pipeline_execution = SageMakerModelBackend.start_pipeline_execution

    def idempotent_start(self: Any, pipeline_name: str, *args: Any, **kwargs: Any) -> dict[str, str]:
        token = kwargs.get("client_request_token")
        if token is None and len(args) >= 5:
            token = args[4]
        with _STARTS:
            if token:
                pipeline = self.pipelines.get(pipeline_name)
                for arn, execution in (pipeline.pipeline_executions.items() if pipeline else []):
                    if getattr(execution, "client_request_token", None) == token:
                        return {"PipelineExecutionArn": arn}
            return start_pipeline_execution(self, pipeline_name, *args, **kwargs)

    SageMakerModelBackend.start_pipeline_execution = idempotent_start
