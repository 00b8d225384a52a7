//! What the reviewers' managed policy (`ReviewerPolicy` in the iam stack, attached by an
//! administrator to the people who label photos) must allow: every call `mlops-infra review`
//! makes (src/aws/sdk_review.rs) on the queue of each parent model, the raw data its
//! decisions copy into, the class names, the bucket key and the review log.

use std::collections::BTreeMap;

use crate::iam::requirements::Requirement;
use crate::iam::resolve::Resolver;

/// The policy's logical ID in the iam stack.
pub const POLICY: &str = "ReviewerPolicy";

pub fn requirements(resolver: &Resolver) -> Vec<Requirement> {
    let mut out = Vec::new();
    let environment = resolver.environment;
    let (partition, region, account) = (
        resolver.partition(),
        environment.region.as_str(),
        environment.account_id.as_str(),
    );
    for stack in resolver.stacks {
        let Some(resource) = stack.template.resources.get(POLICY) else {
            continue;
        };
        let principal = resolver.arn(stack, POLICY, resource);
        let mut need = |action: &str, resource: String, context: BTreeMap<String, String>| {
            out.push(Requirement {
                role_arn: principal.clone(),
                action: action.to_string(),
                resource,
                context,
                needed_by: format!("{}: mlops-infra review", stack.spec.id),
            });
        };
        let data = format!(
            "arn:{partition}:s3:::{}",
            environment.storage.data_bucket_name
        );
        let artifacts = format!(
            "arn:{partition}:s3:::{}",
            environment.storage.artifacts_bucket_name
        );
        let raw = &environment.pipeline.raw_prefix;
        for parent in environment.models.iter().filter(|m| !m.routes.is_empty()) {
            let name = &parent.name;
            let pending = environment.review.pending_prefix(name);
            need(
                "s3:ListBucket",
                data.clone(),
                BTreeMap::from([("s3:prefix".to_string(), pending.clone())]),
            );
            for key in [
                format!("{pending}ITEM.json"),
                format!("{pending}ITEM.jpg"),
                format!("review/claims/{name}/ITEM.json"),
            ] {
                need("s3:GetObject", format!("{data}/{key}"), BTreeMap::new());
            }
            for key in [
                format!("review/claims/{name}/ITEM.json"),
                format!("review/done/{name}/ITEM.json"),
                format!("{raw}{name}/SUBGROUP/ITEM.jpg"),
            ] {
                need("s3:PutObject", format!("{data}/{key}"), BTreeMap::new());
            }
            for key in [
                format!("{pending}ITEM.json"),
                format!("{pending}ITEM.jpg"),
                format!("review/claims/{name}/ITEM.json"),
            ] {
                need("s3:DeleteObject", format!("{data}/{key}"), BTreeMap::new());
            }
            let children = environment
                .models
                .iter()
                .filter(|child| child.parent.as_deref() == Some(name.as_str()));
            for model in std::iter::once(parent).chain(children) {
                need(
                    "s3:PutObject",
                    format!("{data}/{raw}{}/LABEL/ITEM.jpg", model.name),
                    BTreeMap::new(),
                );
                need(
                    "s3:GetObject",
                    format!(
                        "{artifacts}/{}/EXECUTION/datasets/index/classes.json",
                        model.pipeline_name
                    ),
                    BTreeMap::new(),
                );
                need(
                    "sagemaker:DescribeModelPackage",
                    format!(
                        "arn:{partition}:sagemaker:{region}:{account}:model-package/{}/1",
                        model.model_package_group_name.to_lowercase()
                    ),
                    BTreeMap::new(),
                );
            }
        }
        if let Some(key_arn) = resolver.bucket_key() {
            need("kms:Decrypt", key_arn.clone(), BTreeMap::new());
            need("kms:GenerateDataKey", key_arn, BTreeMap::new());
        }
        let log_group = format!(
            "arn:{partition}:logs:{region}:{account}:log-group:{}",
            crate::commands::review::log_group(environment)
        );
        need(
            "logs:CreateLogStream",
            format!("{log_group}:log-stream:review-SESSION"),
            BTreeMap::new(),
        );
        need(
            "logs:PutLogEvents",
            format!("{log_group}:log-stream:review-SESSION"),
            BTreeMap::new(),
        );
    }
    out
}
