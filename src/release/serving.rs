//! Which model package each endpoint serves: the environment's `serving` choice, resolved
//! against the registry (or the promotion record) when planning. The plan carries the result
//! as the endpoint stack's `ModelPackageArn` parameter.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::aws::platform::{ModelPackage, Platform};
use crate::config::{Environment, Model, Serving};
use crate::error::Error;

use super::records::{PromotionRecord, from_json, promotion_parameter};

/// The endpoint stack's parameter naming the package it serves.
pub const PACKAGE_PARAMETER: &str = "ModelPackageArn";

/// What a model's `serving` choice resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved {
    /// `None`: nothing to serve yet (no approved package, nothing promoted).
    pub arn: Option<String>,
    /// How it was chosen, for the plan: `latest-approved: version 3`.
    pub source: String,
}

/// Models resolved at once: one registry (or SSM) read each.
const CONCURRENCY: usize = 8;

/// Resolves every model of `environment`, a few at a time.
pub async fn resolve_all<P: Platform>(
    platform: &P,
    environment: &Environment,
) -> Result<BTreeMap<String, Resolved>, Error> {
    use futures::stream::{self, StreamExt, TryStreamExt};
    stream::iter(environment.models.iter().map(|model| async move {
        let resolved = resolve(platform, environment, model).await?;
        Ok::<_, Error>((model.name.clone(), resolved))
    }))
    .buffer_unordered(CONCURRENCY)
    .try_collect()
    .await
}

/// Resolves one model's choice.
pub async fn resolve<P: Platform>(
    platform: &P,
    environment: &Environment,
    model: &Model,
) -> Result<Resolved, Error> {
    let aws = |error: crate::aws::AwsError| Error::Usage {
        message: format!(
            "cannot resolve what the endpoint of `{}` serves: {error}",
            model.name
        ),
        hint: None,
    };
    match model.serving {
        Serving::LatestApproved => {
            let packages = platform
                .model_packages(&model.model_package_group_name)
                .await
                .map_err(aws)?;
            Ok(latest_approved(&packages))
        }
        Serving::Version(version) => {
            let packages = platform
                .model_packages(&model.model_package_group_name)
                .await
                .map_err(aws)?;
            fixed_version(environment, model, &packages, version)
        }
        Serving::Promoted => {
            let parameter = promotion_parameter(environment, &model.name);
            match platform.parameter(&parameter).await.map_err(aws)? {
                None => Ok(Resolved {
                    arn: None,
                    source: "promoted: nothing promoted yet".into(),
                }),
                Some(text) => {
                    let record: PromotionRecord =
                        from_json(&parameter, &text).map_err(|message| Error::Usage {
                            message,
                            hint: Some(format!(
                                "promote again: `mlops-infra promote {} --from <env> --to {}`",
                                model.name, environment.name
                            )),
                        })?;
                    Ok(Resolved {
                        source: format!(
                            "promoted from {}: version {}",
                            record.from, record.version
                        ),
                        arn: Some(record.package_arn),
                    })
                }
            }
        }
    }
}

/// The newest Approved package; `packages` newest first.
pub fn latest_approved(packages: &[ModelPackage]) -> Resolved {
    match packages.iter().find(|package| package.is_approved()) {
        Some(package) => Resolved {
            arn: Some(package.arn.clone()),
            source: format!("latest-approved: version {}", package.version),
        },
        None => Resolved {
            arn: None,
            source: "latest-approved: no approved package yet".into(),
        },
    }
}

/// A pinned version: it must exist and be Approved.
pub fn fixed_version(
    environment: &Environment,
    model: &Model,
    packages: &[ModelPackage],
    version: u64,
) -> Result<Resolved, Error> {
    let Some(package) = packages.iter().find(|package| package.version == version) else {
        return Err(Error::Usage {
            message: format!(
                "model `{}` serves version {version}, which group {} does not have",
                model.name, model.model_package_group_name
            ),
            hint: Some(format!(
                "list the versions with `mlops-infra models {}`, and fix `serving` of model `{}`",
                environment.name, model.name
            )),
        });
    };
    if !package.is_approved() {
        return Err(Error::Usage {
            message: format!(
                "model `{}` serves version {version}, which is {}, not Approved",
                model.name, package.approval
            ),
            hint: Some(format!(
                "approve it with `mlops-infra approve {} {} {version}`, or serve another version",
                environment.name, model.name
            )),
        });
    }
    Ok(Resolved {
        arn: Some(package.arn.clone()),
        source: format!("version {version}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::platform::{APPROVED, PENDING, REJECTED};

    fn package(version: u64, approval: &str) -> ModelPackage {
        ModelPackage {
            arn: format!("arn:aws:sagemaker:eu-west-1:1:model-package/g/{version}"),
            group: "g".into(),
            version,
            approval: approval.into(),
            created: None,
            approval_description: None,
            metrics_uri: None,
            classes_uri: None,
        }
    }

    #[test]
    fn latest_approved_skips_newer_pending_and_rejected_versions() {
        let packages = [
            package(4, PENDING),
            package(3, REJECTED),
            package(2, APPROVED),
            package(1, APPROVED),
        ];
        let resolved = latest_approved(&packages);
        assert_eq!(resolved.arn.as_deref(), Some(packages[2].arn.as_str()));
        assert_eq!(resolved.source, "latest-approved: version 2");
        assert_eq!(latest_approved(&packages[..2]).arn, None);
    }
}
