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

DeleteModelPackage and DeleteModelPackageGroup: moto 5.2.5 has neither (HTTP 500). Here the first
removes a version named by its ARN (a missing one is a ValidationException), the second the group, named by name
or ARN; a missing group is a ValidationException with DescribeModelPackageGroup's wording. A group
that still holds model package versions is refused with ConflictException, the only error the API
reference lists; that AWS refuses this case is inferred, not documented.
"""

import threading
from typing import Any

_STARTS = threading.Lock()


def install() -> None:
    from moto.core.responses import EmptyResult
    from moto.sagemaker.exceptions import ConflictException, ValidationError
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    def delete_model_package(self: Any, name_or_arn: str) -> None:
        arn = self.model_package_name_mapping.get(name_or_arn)
        if arn is None or arn not in self.model_packages:
            raise ValidationError(f"Model package {name_or_arn} does not exist.")
        self.model_packages.pop(arn)
        for key in [key for key, value in self.model_package_name_mapping.items() if value == arn]:
            del self.model_package_name_mapping[key]

    def delete_model_package_response(self: Any) -> Any:
        self.sagemaker_backend.delete_model_package(self._get_param("ModelPackageName"))
        return EmptyResult()

    def delete_model_package_group(self: Any, name_or_arn: str) -> None:
        name = name_or_arn.rsplit("/", 1)[-1]
        self.describe_model_package_group(name)
        if any(package.model_package_group_name == name for package in self.model_packages.values()):
            raise ConflictException(f"Model package group {name} still holds model packages: delete them first.")
        self.model_package_groups.pop(name, None)

    def delete_model_package_group_response(self: Any) -> Any:
        self.sagemaker_backend.delete_model_package_group(self._get_param("ModelPackageGroupName"))
        return EmptyResult()

    SageMakerModelBackend.delete_model_package = delete_model_package
    SageMakerResponse.delete_model_package = delete_model_package_response
    SageMakerModelBackend.delete_model_package_group = delete_model_package_group
    SageMakerResponse.delete_model_package_group = delete_model_package_group_response

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
