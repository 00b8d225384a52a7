//! `models`, `approve` and `reject`: the model registry of an environment.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::aws::CloudFormation;
use crate::aws::platform::{APPROVED, ModelPackage, PENDING, Platform, REJECTED};
use crate::cli::{ApproveArgs, ModelsArgs, OutputFormat, RejectArgs};
use crate::config::{Environment, Model};
use crate::error::{Error, ExitStatus};
use crate::release::serving::PACKAGE_PARAMETER;

use super::deploy::aws_error;
use super::{Output, load_environment, wrong_account};

/// The model called `name`, or an error naming the environment's models.
pub(crate) fn model<'a>(environment: &'a Environment, name: &str) -> Result<&'a Model, Error> {
    environment.model(name).ok_or_else(|| {
        let names: Vec<&str> = environment
            .models
            .iter()
            .map(|model| model.name.as_str())
            .collect();
        Error::Usage {
            message: format!("environment `{}` has no model `{name}`", environment.name),
            hint: Some(
                match crate::error::did_you_mean(name, names.iter().copied()) {
                    Some(close) => format!("did you mean `{close}`?"),
                    None => format!("models: {}", names.join(", ")),
                },
            ),
        }
    })
}

/// The model named by `--model`, or every model of the environment.
pub(crate) fn selected<'a>(
    environment: &'a Environment,
    name: Option<&str>,
) -> Result<Vec<&'a Model>, Error> {
    match name {
        Some(name) => Ok(vec![model(environment, name)?]),
        None => Ok(environment.models.iter().collect()),
    }
}

/// The credentials must belong to the environment's account (as for `apply`).
pub(crate) async fn guard<P: Platform>(
    platform: &P,
    environment: &Environment,
) -> Result<(), Error> {
    let identity = platform
        .caller()
        .await
        .map_err(|error| aws_error("cannot check the account", error))?;
    if identity.account != environment.account_id {
        return Err(wrong_account(&identity.account, environment));
    }
    Ok(())
}

/// The CloudFormation stack of a model's endpoint.
pub(crate) fn endpoint_stack(environment: &Environment, model: &Model) -> String {
    format!("{}-endpoint-{}", environment.prefix(), model.name)
}

/// The package the model's endpoint stack is deployed with; `None` when it serves none.
pub(crate) async fn deployed_package<C: CloudFormation>(
    client: &C,
    environment: &Environment,
    model: &Model,
) -> Result<Option<String>, Error> {
    let stack = client
        .stack_state(&endpoint_stack(environment, model))
        .await
        .map_err(|error| aws_error("cannot read the endpoint stack", error))?;
    Ok(stack
        .and_then(|stack| stack.parameters.get(PACKAGE_PARAMETER).cloned())
        .filter(|arn| !arn.is_empty()))
}

#[derive(Debug, Serialize)]
struct PackageView {
    version: u64,
    arn: String,
    approval: String,
    created: Option<String>,
    approval_description: Option<String>,
    /// The endpoint is deployed with this package.
    serving: bool,
    /// From the evaluation report: `accuracy`, `top_5_accuracy`.
    metrics: serde_json::Map<String, Value>,
}

#[derive(Debug, Serialize)]
struct ModelView {
    model: String,
    group: String,
    serving_choice: String,
    packages: Vec<PackageView>,
}

pub async fn models<C: CloudFormation, P: Platform>(
    client: &C,
    platform: &P,
    project_dir: &Path,
    args: &ModelsArgs,
    output: &mut Output<'_>,
) -> ExitStatus {
    let environment = match load_environment(project_dir, &args.environment, output) {
        Ok(environment) => environment,
        Err(status) => return status,
    };
    let chosen = match selected(&environment, args.model.as_deref()) {
        Ok(models) => models,
        Err(error) => return output.fail(&[error]),
    };
    if let Err(error) = guard(platform, &environment).await {
        return output.fail(&[error]);
    }
    let mut views = Vec::new();
    for model in chosen {
        match model_view(client, platform, &environment, model, args.limit).await {
            Ok(view) => views.push(view),
            Err(error) => return output.fail(&[error]),
        }
    }
    let text = match args.output {
        OutputFormat::Json => {
            let mut text = serde_json::to_string_pretty(&views).unwrap_or_default();
            text.push('\n');
            text
        }
        OutputFormat::Text => models_text(&views, output.color),
    };
    let _ = write!(output.out, "{text}");
    ExitStatus::Success
}

async fn model_view<C: CloudFormation, P: Platform>(
    client: &C,
    platform: &P,
    environment: &Environment,
    model: &Model,
    limit: usize,
) -> Result<ModelView, Error> {
    let serving = deployed_package(client, environment, model).await?;
    let summaries = platform
        .model_packages(&model.model_package_group_name)
        .await
        .map_err(|error| aws_error("cannot list the model packages", error))?;
    let mut packages = Vec::new();
    for summary in summaries.into_iter().take(limit) {
        let described = platform
            .model_package(&summary.arn)
            .await
            .map_err(|error| aws_error("cannot describe the model package", error))?
            .unwrap_or(summary);
        let metrics = match &described.metrics_uri {
            Some(uri) => metrics(platform, uri, &environment.pipeline.metric_path).await,
            None => serde_json::Map::new(),
        };
        packages.push(PackageView {
            version: described.version,
            serving: serving.as_deref() == Some(described.arn.as_str()),
            arn: described.arn,
            approval: described.approval,
            created: described.created,
            approval_description: described.approval_description,
            metrics,
        });
    }
    Ok(ModelView {
        model: model.name.clone(),
        group: model.model_package_group_name.clone(),
        serving_choice: model.serving.to_string(),
        packages,
    })
}

/// The headline metrics of an evaluation report; an unreadable report gives none (the
/// listing still shows the package).
async fn metrics<P: Platform>(
    platform: &P,
    uri: &str,
    metric_path: &str,
) -> serde_json::Map<String, Value> {
    let mut found = serde_json::Map::new();
    let Ok(Some(text)) = platform.read_object(uri).await else {
        return found;
    };
    let Ok(report) = serde_json::from_str::<Value>(&text) else {
        return found;
    };
    let get = |path: &str| {
        path.split('.')
            .try_fold(&report, |value, key| value.get(key))
            .filter(|value| value.is_number())
            .cloned()
    };
    if let Some(accuracy) = get(metric_path) {
        found.insert("accuracy".into(), accuracy);
    }
    if let Some(top5) = get("multiclass_classification_metrics.top_5_accuracy.value") {
        found.insert("top_5_accuracy".into(), top5);
    }
    found
}

fn models_text(views: &[ModelView], color: bool) -> String {
    let mut out = String::new();
    for view in views {
        out.push_str(&format!(
            "{} (group {}, serves {})\n",
            view.model, view.group, view.serving_choice
        ));
        if view.packages.is_empty() {
            out.push_str("  no packages yet: run the model's pipeline\n\n");
            continue;
        }
        out.push_str(&format!(
            "  {:<8} {:<22} {:<21} {:<9} {:<9} NOTE\n",
            "VERSION", "STATUS", "CREATED", "ACCURACY", "TOP-5"
        ));
        for package in &view.packages {
            let metric = |name: &str| {
                package
                    .metrics
                    .get(name)
                    .and_then(Value::as_f64)
                    .map(|value| format!("{value:.3}"))
                    .unwrap_or_else(|| "-".into())
            };
            let mut note = Vec::new();
            if package.serving {
                note.push("serving".to_string());
            }
            if let Some(description) = &package.approval_description {
                note.push(description.clone());
            }
            let line = format!(
                "  {:<8} {} {:<21} {:<9} {:<9} {}",
                package.version,
                crate::view::status_cell(&package.approval, 22, color),
                package.created.as_deref().unwrap_or("-"),
                metric("accuracy"),
                metric("top_5_accuracy"),
                note.join("; ")
            );
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

pub async fn approve<P: Platform>(
    platform: &P,
    project_dir: &Path,
    args: &ApproveArgs,
    output: &mut Output<'_>,
) -> ExitStatus {
    let decision = Decision {
        environment: &args.environment,
        model: &args.model,
        version: args.version,
        approval: APPROVED,
        reason: &args.reason,
    };
    decide(platform, project_dir, &decision, output).await
}

pub async fn reject<P: Platform>(
    platform: &P,
    project_dir: &Path,
    args: &RejectArgs,
    output: &mut Output<'_>,
) -> ExitStatus {
    if args.reason.trim().is_empty() {
        return output.fail(&[Error::Usage {
            message: "a rejection needs a reason".into(),
            hint: Some("say why with `--reason \"…\"`; it is kept on the package".into()),
        }]);
    }
    let decision = Decision {
        environment: &args.environment,
        model: &args.model,
        version: args.version,
        approval: REJECTED,
        reason: &args.reason,
    };
    decide(platform, project_dir, &decision, output).await
}

/// An approval or a rejection, as asked for.
struct Decision<'a> {
    environment: &'a str,
    model: &'a str,
    version: Option<u64>,
    /// `Approved` or `Rejected`.
    approval: &'static str,
    reason: &'a str,
}

async fn decide<P: Platform>(
    platform: &P,
    project_dir: &Path,
    decision: &Decision<'_>,
    output: &mut Output<'_>,
) -> ExitStatus {
    let Decision {
        environment,
        model: model_name,
        version,
        approval,
        reason,
    } = *decision;
    let environment = match load_environment(project_dir, environment, output) {
        Ok(environment) => environment,
        Err(status) => return status,
    };
    let model = match model(&environment, model_name) {
        Ok(model) => model,
        Err(error) => return output.fail(&[error]),
    };
    if let Err(error) = guard(platform, &environment).await {
        return output.fail(&[error]);
    }
    let packages = match platform
        .model_packages(&model.model_package_group_name)
        .await
    {
        Ok(packages) => packages,
        Err(error) => return output.fail(&[aws_error("cannot list the model packages", error)]),
    };
    let package = match pick(&environment, model, &packages, version) {
        Ok(package) => package,
        Err(error) => return output.fail(&[error]),
    };
    if package.approval == approval {
        let _ = writeln!(
            output.err,
            "{} version {} is already {approval}",
            model.name, package.version
        );
        return ExitStatus::Success;
    }
    if let Err(error) = platform.set_approval(&package.arn, approval, reason).await {
        return output.fail(&[aws_error("cannot update the model package", error)]);
    }
    let _ = writeln!(
        output.err,
        "{} version {}: {} → {approval}",
        model.name, package.version, package.approval
    );
    if approval == APPROVED {
        let _ = writeln!(
            output.err,
            "endpoints serving `latest-approved` pick it up at the next apply (`mlops-infra plan {}` shows the switch)",
            environment.name
        );
    }
    ExitStatus::Success
}

/// The version asked for, or the newest pending one.
fn pick<'a>(
    environment: &Environment,
    model: &Model,
    packages: &'a [ModelPackage],
    version: Option<u64>,
) -> Result<&'a ModelPackage, Error> {
    let listing = format!(
        "`mlops-infra models {} --model {}`",
        environment.name, model.name
    );
    match version {
        Some(version) => packages
            .iter()
            .find(|package| package.version == version)
            .ok_or_else(|| Error::Usage {
                message: format!(
                    "group {} has no version {version}",
                    model.model_package_group_name
                ),
                hint: Some(format!("list the versions with {listing}")),
            }),
        None => packages
            .iter()
            .find(|package| package.approval == PENDING)
            .ok_or_else(|| Error::Usage {
                message: format!(
                    "group {} has no package pending approval",
                    model.model_package_group_name
                ),
                hint: Some(format!("name a version; list them with {listing}")),
            }),
    }
}
