//! `test` (acceptance tests of an environment's endpoints, recorded in SSM) and `promote`
//! (a tested package to another environment, then that model's endpoint applied there).

use std::path::Path;

use crate::aws::CloudFormation;
use crate::aws::platform::Platform;
use crate::cli::{ApplyArgs, PromoteArgs, TestArgs};
use crate::config::{Environment, Serving};
use crate::error::{Error, ExitStatus};
use crate::release::acceptance::{EndpointResult, load_payloads, test_endpoint};
use crate::release::records::{
    AcceptanceRecord, PromotionRecord, acceptance_parameter, from_json, promotion_parameter,
    to_json,
};

use super::Output;
use super::deploy::{self, Context, aws_error};
use super::load_environment;
use super::registry::{deployed_package, guard, model, selected};

/// Failures kept in the SSM record; `test` prints them all.
const RECORDED_FAILURES: usize = 5;

pub async fn test<C: CloudFormation, P: Platform>(
    client: &C,
    platform: &P,
    project_dir: &Path,
    args: &TestArgs,
    output: &mut Output<'_>,
    context: &Context<'_>,
) -> ExitStatus {
    let environment = match load_environment(project_dir, &args.environment, output) {
        Ok(environment) => environment,
        Err(status) => return status,
    };
    let models = match selected(&environment, args.model.as_deref()) {
        Ok(models) => models,
        Err(error) => return output.fail(&[error]),
    };
    let payloads = match load_payloads(project_dir, &environment.acceptance) {
        Ok(payloads) => payloads,
        Err(error) => return output.fail(&[error]),
    };
    if let Err(error) = guard(platform, &environment).await {
        return output.fail(&[error]);
    }
    let limit = environment.acceptance.max_latency_milliseconds;
    let mut tested = 0;
    let mut failed = 0;
    for model in models {
        let package = match deployed_package(client, &environment, model).await {
            Ok(Some(package)) => package,
            Ok(None) => {
                let _ = writeln!(
                    output.out,
                    "{:<16} SKIPPED  serves no model package yet",
                    model.name
                );
                continue;
            }
            Err(error) => return output.fail(&[error]),
        };
        let result = test_endpoint(platform, model, &payloads, limit).await;
        tested += 1;
        if !result.passed() {
            failed += 1;
        }
        write_result(output, &result, limit);
        let record = AcceptanceRecord {
            endpoint: result.endpoint.clone(),
            package_arn: package,
            passed: result.passed(),
            tested_at: context.now.clone(),
            samples: result.samples.len(),
            slowest_milliseconds: result.slowest_milliseconds(),
            max_latency_milliseconds: limit,
            failures: result
                .failures()
                .into_iter()
                .take(RECORDED_FAILURES)
                .collect(),
        };
        let parameter = acceptance_parameter(&environment, &model.name);
        if let Err(error) = platform.put_parameter(&parameter, &to_json(&record)).await {
            return output.fail(&[aws_error("cannot record the test result", error)]);
        }
    }
    // The whole environment: also the one call apps make, through each router.
    if args.model.is_none() && tested > 0 {
        for parent in environment.models.iter().filter(|m| !m.routes.is_empty()) {
            match test_router(client, platform, &environment, parent, &payloads).await {
                Ok(None) => {}
                Ok(Some(failures)) => {
                    let name = format!("router-{}", parent.name);
                    if failures.is_empty() {
                        let _ = writeln!(
                            output.out,
                            "{name:<16} PASSED   {} sample(s) through POST /identify",
                            payloads.len()
                        );
                    } else {
                        failed += 1;
                        let _ = writeln!(output.out, "{name:<16} FAILED");
                        for failure in failures {
                            let _ = writeln!(output.out, "    {failure}");
                        }
                    }
                }
                Err(error) => return output.fail(&[error]),
            }
        }
    }
    if tested == 0 {
        return output.fail(&[Error::Usage {
            message: format!("no endpoint of `{}` serves a model yet", environment.name),
            hint: Some(format!(
                "approve a package (`mlops-infra models {0}`, `mlops-infra approve {0} <model>`) and apply",
                environment.name
            )),
        }]);
    }
    let _ = writeln!(
        output.err,
        "{} of {tested} endpoint(s) passed; results recorded under /{}/{}/acceptance/",
        tested - failed,
        environment.project,
        environment.name
    );
    if failed > 0 {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    }
}

/// Sends each sample through the parent's router as an app does; `None` when the router or
/// the parent's endpoint is not serving yet, else the failures (an answer that is neither a
/// species nor `no_endpoint`, the child not serving yet).
async fn test_router<C: CloudFormation, P: Platform>(
    client: &C,
    platform: &P,
    environment: &crate::config::Environment,
    parent: &crate::config::Model,
    payloads: &[crate::release::acceptance::Payload],
) -> Result<Option<Vec<String>>, Error> {
    if deployed_package(client, environment, parent)
        .await?
        .is_none()
    {
        return Ok(None);
    }
    let stack = format!("{}-router-{}", environment.prefix(), parent.name);
    let url = client
        .stack_state(&stack)
        .await
        .map_err(|error| aws_error(&format!("cannot read {stack}"), error))?
        .and_then(|deployed| deployed.outputs.get(super::identify::URL_OUTPUT).cloned());
    let Some(url) = url else {
        return Ok(None);
    };
    let mut failures = Vec::new();
    for payload in payloads {
        match platform
            .post_signed(&url, payload.content_type, &payload.body)
            .await
        {
            Ok((200, body)) => {
                let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                if answer["species"]["name"].as_str().is_none() {
                    failures.push(format!("{}: 200 without a species", payload.name));
                }
            }
            Ok((503, body)) if String::from_utf8_lossy(&body).contains("no_endpoint") => {}
            Ok((status, body)) => failures.push(format!(
                "{}: {status} {}",
                payload.name,
                String::from_utf8_lossy(&body)
            )),
            Err(error) => failures.push(format!("{}: {error}", payload.name)),
        }
    }
    Ok(Some(failures))
}

fn write_result(output: &mut Output, result: &EndpointResult, limit: u32) {
    let verdict = if result.passed() { "PASSED" } else { "FAILED" };
    let _ = writeln!(
        output.out,
        "{:<16} {verdict}   {} sample(s), slowest {} ms (limit {limit} ms)",
        result.model,
        result.samples.len(),
        result.slowest_milliseconds()
    );
    for failure in result.failures() {
        let _ = writeln!(output.out, "    {failure}");
    }
}

/// The two sides of a promotion, each with its own clients (accounts may differ).
pub struct Side<'a, C, P> {
    pub client: &'a C,
    pub platform: &'a P,
}

pub async fn promote<C: CloudFormation, P: Platform>(
    from: Side<'_, C, P>,
    to: Side<'_, C, P>,
    project_dir: &Path,
    args: &PromoteArgs,
    output: &mut Output<'_>,
    context: &Context<'_>,
) -> ExitStatus {
    if args.from == args.to {
        return output.fail(&[Error::Usage {
            message: format!("cannot promote from `{}` to itself", args.from),
            hint: Some("promote from the environment that tested the package to the next one, e.g. `--from staging --to prod`".into()),
        }]);
    }
    let source = match load_environment(project_dir, &args.from, output) {
        Ok(environment) => environment,
        Err(status) => return status,
    };
    let target = match load_environment(project_dir, &args.to, output) {
        Ok(environment) => environment,
        Err(status) => return status,
    };
    let record =
        match check_promotion(&from, &to, &source, &target, &args.model, &context.now).await {
            Ok(record) => record,
            Err(error) => return output.fail(&[error]),
        };
    let _ = writeln!(
        output.err,
        "promoting {} version {} from {} to {}",
        args.model, record.version, source.name, target.name
    );
    // Asked before anything is written: declining leaves the target exactly as it was.
    if !args.yes {
        let question = format!(
            "record version {} of {} as promoted to `{}` and switch its endpoint now? type yes: ",
            record.version, args.model, target.name
        );
        match context.confirm {
            Some(confirm) if confirm(&question) => {}
            Some(_) => {
                let _ = writeln!(output.err, "promotion cancelled: nothing was recorded");
                return ExitStatus::Failure;
            }
            None => {
                return output.fail(&[Error::Usage {
                    message: "promote needs confirmation and nobody can answer here".into(),
                    hint: Some("pass --yes".into()),
                }]);
            }
        }
    }
    let parameter = promotion_parameter(&target, &args.model);
    if let Err(error) = to
        .platform
        .put_parameter(&parameter, &to_json(&record))
        .await
    {
        return output.fail(&[aws_error("cannot record the promotion", error)]);
    }
    let apply_args = ApplyArgs {
        target: target.name.clone(),
        // Confirmed above.
        yes: true,
        allow_replace: Vec::new(),
        stacks: serving_stacks(&target, &args.model),
        concurrency: 1,
        revert_drift: false,
        output: crate::cli::OutputFormat::Text,
    };
    let status = deploy::apply(
        to.client,
        to.platform,
        project_dir,
        &apply_args,
        output,
        context,
    )
    .await;
    if status == ExitStatus::Failure {
        let _ = writeln!(
            output.err,
            "the promotion is recorded ({parameter}); the next `mlops-infra apply {}` deploys it",
            target.name
        );
    }
    status
}

/// Checks everything a promotion needs and returns the record to write on the target.
async fn check_promotion<C: CloudFormation, P: Platform>(
    from: &Side<'_, C, P>,
    to: &Side<'_, C, P>,
    source: &Environment,
    target: &Environment,
    model_name: &str,
    now: &str,
) -> Result<PromotionRecord, Error> {
    let source_model = model(source, model_name)?;
    let target_model = model(target, model_name)?;
    if target_model.serving != Serving::Promoted {
        return Err(Error::Usage {
            message: format!(
                "model `{model_name}` on `{}` serves {}, not promoted packages",
                target.name, target_model.serving
            ),
            hint: Some(format!(
                "set `endpoint.serving: promoted` (or `serving: promoted` on the model) in environments/{}.yaml",
                target.name
            )),
        });
    }
    guard(from.platform, source).await?;
    guard(to.platform, target).await?;
    let Some(served) = deployed_package(from.client, source, source_model).await? else {
        return Err(Error::Usage {
            message: format!(
                "the endpoint of `{model_name}` on `{}` serves no package",
                source.name
            ),
            hint: Some(format!(
                "approve a package and apply `{}` first",
                source.name
            )),
        });
    };
    let package = from
        .platform
        .model_package(&served)
        .await
        .map_err(|error| aws_error("cannot describe the model package", error))?
        .ok_or_else(|| Error::Usage {
            message: format!("model package {served} no longer exists"),
            hint: None,
        })?;
    if !package.is_approved() {
        return Err(Error::Usage {
            message: format!(
                "{model_name} version {} on `{}` is {}, not Approved",
                package.version, source.name, package.approval
            ),
            hint: Some("only approved packages are promoted".into()),
        });
    }
    let parameter = acceptance_parameter(source, model_name);
    let test_hint = Some(format!(
        "run `mlops-infra test {} --model {model_name}`",
        source.name
    ));
    let text = from
        .platform
        .parameter(&parameter)
        .await
        .map_err(|error| aws_error("cannot read the acceptance record", error))?
        .ok_or_else(|| Error::Usage {
            message: format!(
                "{model_name} version {} has not been tested on `{}`",
                package.version, source.name
            ),
            hint: test_hint.clone(),
        })?;
    let tested: AcceptanceRecord =
        from_json(&parameter, &text).map_err(|message| Error::Usage {
            message,
            hint: test_hint.clone(),
        })?;
    if tested.package_arn != served {
        return Err(Error::Usage {
            message: format!(
                "the last test on `{}` was of another package ({}); the endpoint now serves version {}",
                source.name, tested.package_arn, package.version
            ),
            hint: test_hint,
        });
    }
    if !tested.passed {
        return Err(Error::Usage {
            message: format!(
                "{model_name} version {} failed its tests on `{}` ({}): {}",
                package.version,
                source.name,
                tested.tested_at,
                tested.failures.join("; ")
            ),
            hint: Some("fix the endpoint or serve another package, then test again".into()),
        });
    }
    Ok(PromotionRecord {
        package_arn: served,
        version: package.version,
        from: source.name.clone(),
        promoted_at: now.to_string(),
    })
}

/// The stacks naming `model`'s served package: its endpoint, and the router in front of it
/// (its own when it is a parent, its parent's when it is a child).
fn serving_stacks(environment: &crate::config::Environment, model: &str) -> Vec<String> {
    let mut stacks = vec![format!("endpoint-{model}")];
    if let Some(found) = environment.model(model) {
        if !found.routes.is_empty() {
            stacks.push(format!("router-{model}"));
        }
        if let Some(parent) = &found.parent {
            stacks.push(format!("router-{parent}"));
        }
    }
    stacks
}
