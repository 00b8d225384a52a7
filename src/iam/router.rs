//! What a router function's role must be allowed, from what `router/handler.py` calls for the
//! parent model and its children: InvokeEndpoint on each endpoint, DescribeModelPackage on
//! each model's packages, GetObject on each model's classes.json (and the bucket key), and
//! writing its own log group; and keeping low-confidence photos for review: PutObject (and
//! DeleteObject, to take back a half-written item) under the parent's review prefix of the data
//! bucket, with the bucket key's GenerateDataKey.

use std::collections::BTreeMap;

use crate::iam::requirements::Requirement;
use crate::iam::resolve::Resolver;

/// The requirements of every router function in the stacks.
pub fn requirements(resolver: &Resolver) -> Vec<Requirement> {
    let mut out = Vec::new();
    let environment = resolver.environment;
    let (partition, region, account) = (
        resolver.partition(),
        environment.region.as_str(),
        environment.account_id.as_str(),
    );
    for stack in resolver.stacks {
        let (Some(_), Some(parent)) = (stack.spec.function.as_deref(), stack.spec.model.as_deref())
        else {
            continue;
        };
        let Some(function) = stack
            .template
            .resources
            .iter()
            .find(|(_, resource)| resource.resource_type == "AWS::Lambda::Function")
        else {
            continue;
        };
        let (logical_id, resource) = function;
        let role = resource
            .properties
            .get("Role")
            .map(|role| resolver.string(stack, role))
            .unwrap_or_default();
        let models = environment
            .models
            .iter()
            .filter(|model| model.name == parent || model.parent.as_deref() == Some(parent));
        let mut need = |action: &str, resource: String| {
            out.push(Requirement {
                role_arn: role.clone(),
                action: action.to_string(),
                resource,
                context: BTreeMap::new(),
                needed_by: format!("{}: {logical_id} (router/handler.py)", stack.spec.id),
            });
        };
        let bucket = &environment.storage.artifacts_bucket_name;
        for model in models {
            need(
                "sagemaker:InvokeEndpoint",
                format!(
                    "arn:{partition}:sagemaker:{region}:{account}:endpoint/{}",
                    model.endpoint_name.to_lowercase()
                ),
            );
            need(
                "sagemaker:DescribeModelPackage",
                format!(
                    "arn:{partition}:sagemaker:{region}:{account}:model-package/{}/1",
                    model.model_package_group_name.to_lowercase()
                ),
            );
            need(
                "s3:GetObject",
                format!(
                    "arn:{partition}:s3:::{bucket}/{}/EXECUTION/datasets/index/classes.json",
                    model.pipeline_name
                ),
            );
        }
        let review = format!(
            "arn:{partition}:s3:::{}/{}ITEM.json",
            environment.storage.data_bucket_name,
            environment.review.pending_prefix(parent)
        );
        need("s3:PutObject", review.clone());
        need("s3:DeleteObject", review);
        if let Some(key_arn) = resolver.bucket_key() {
            need("kms:GenerateDataKey", key_arn);
        }
        need(
            "logs:PutLogEvents",
            format!(
                "arn:{partition}:logs:{region}:{account}:log-group:/aws/lambda/{}-router-{parent}:log-stream:STREAM",
                environment.prefix()
            ),
        );
    }
    out
}
