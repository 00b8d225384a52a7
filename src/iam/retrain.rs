//! What the retrain function's role must be allowed, from what `retrain/handler.py` calls:
//! reading and conditionally writing each model's count under `retrain/state/` of the data
//! bucket (listing them on the scheduled check), the bucket key for both, starting each
//! model's pipeline, and writing its own log group.

use std::collections::BTreeMap;

use crate::iam::requirements::Requirement;
use crate::iam::resolve::Resolver;

pub fn requirements(resolver: &Resolver) -> Vec<Requirement> {
    let mut out = Vec::new();
    let environment = resolver.environment;
    let (partition, region, account) = (
        resolver.partition(),
        environment.region.as_str(),
        environment.account_id.as_str(),
    );
    for stack in resolver.stacks {
        if stack.spec.function.as_deref() != Some(crate::retrain::CODE) {
            continue;
        }
        let Some((logical_id, resource)) = stack
            .template
            .resources
            .iter()
            .find(|(_, resource)| resource.resource_type == "AWS::Lambda::Function")
        else {
            continue;
        };
        let role = resource
            .properties
            .get("Role")
            .map(|role| resolver.string(stack, role))
            .unwrap_or_default();
        let config = crate::retrain::config(environment);
        let mut need = |action: &str, resource: String, context: BTreeMap<String, String>| {
            out.push(Requirement {
                role_arn: role.clone(),
                action: action.to_string(),
                resource,
                context,
                needed_by: format!("{}: {logical_id} (retrain/handler.py)", stack.spec.id),
            });
        };
        let bucket = format!("arn:{partition}:s3:::{}", config.bucket);
        let state = format!("{bucket}/{}MODEL.json", config.state_prefix);
        need("s3:GetObject", state.clone(), BTreeMap::new());
        need("s3:PutObject", state, BTreeMap::new());
        need(
            "s3:ListBucket",
            bucket,
            BTreeMap::from([("s3:prefix".to_string(), config.state_prefix.clone())]),
        );
        if let Some(key_arn) = resolver.bucket_key() {
            need("kms:Decrypt", key_arn.clone(), BTreeMap::new());
            need("kms:GenerateDataKey", key_arn, BTreeMap::new());
        }
        for model in &environment.models {
            need(
                "sagemaker:StartPipelineExecution",
                format!(
                    "arn:{partition}:sagemaker:{region}:{account}:pipeline/{}",
                    model.pipeline_name.to_lowercase()
                ),
                BTreeMap::new(),
            );
        }
        need(
            "logs:PutLogEvents",
            format!(
                "arn:{partition}:logs:{region}:{account}:log-group:/aws/lambda/{}-retrain:log-stream:STREAM",
                environment.prefix()
            ),
            BTreeMap::new(),
        );
    }
    out
}
