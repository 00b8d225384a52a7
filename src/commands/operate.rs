//! Running the platform: `pipeline start|status` (the manual trigger path), `ci run` (the
//! self-deploy build, followed to its end) and `doctor` (can these credentials deploy here?).

use std::collections::BTreeMap;
use std::path::Path;

use crate::aws::platform::{Build, Platform, Simulation};
use crate::cli::{CiRunArgs, EnvironmentArgs, PipelineStartArgs, PipelineStatusArgs};
use crate::config::{Environment, Model};
use crate::error::{Error, ExitStatus};
use crate::render;

use super::Output;
use super::deploy::{Context, aws_error};
use super::load_environment;
use super::registry::{guard, model, selected};

/// The parameters a model's pipeline declares, from its generated definition.
fn pipeline_parameters(environment: &Environment, model: &Model) -> Vec<String> {
    let spec = crate::pipeline::config::spec(environment, model, String::new());
    crate::pipeline::generate::generate(&spec)
        .parameters
        .into_iter()
        .map(|parameter| parameter.name)
        .collect()
}

/// `KEY=VALUE` arguments, each key a parameter the pipeline declares.
fn parse_params(params: &[String], declared: &[String]) -> Result<Vec<(String, String)>, Error> {
    params
        .iter()
        .map(|param| {
            let Some((key, value)) = param.split_once('=') else {
                return Err(Error::Usage {
                    message: format!("`--param {param}` is not KEY=VALUE"),
                    hint: Some("e.g. `--param InputDataUri=s3://bucket/raw/trees/`".into()),
                });
            };
            if !declared.iter().any(|name| name == key) {
                return Err(Error::Usage {
                    message: format!("the pipeline has no parameter `{key}`"),
                    hint: Some(
                        match crate::error::did_you_mean(key, declared.iter().map(String::as_str)) {
                            Some(close) => format!("did you mean `{close}`?"),
                            None => format!("its parameters: {}", declared.join(", ")),
                        },
                    ),
                });
            }
            Ok((key.to_string(), value.to_string()))
        })
        .collect()
}

pub async fn pipeline_start<P: Platform>(
    platform: &P,
    project_dir: &Path,
    args: &PipelineStartArgs,
    output: &mut Output<'_>,
) -> ExitStatus {
    let environment = match load_environment(project_dir, &args.environment, output) {
        Ok(environment) => environment,
        Err(status) => return status,
    };
    let model = match model(&environment, &args.model) {
        Ok(model) => model,
        Err(error) => return output.fail(&[error]),
    };
    let parameters = match parse_params(&args.params, &pipeline_parameters(&environment, model)) {
        Ok(parameters) => parameters,
        Err(error) => return output.fail(&[error]),
    };
    if let Err(error) = guard(platform, &environment).await {
        return output.fail(&[error]);
    }
    match platform
        .start_pipeline(&model.pipeline_name, &parameters)
        .await
    {
        Ok(arn) => {
            let _ = writeln!(output.out, "{arn}");
            let _ = writeln!(
                output.err,
                "started {}; follow it with `mlops-infra pipeline status {} {}`",
                model.pipeline_name, environment.name, model.name
            );
            ExitStatus::Success
        }
        Err(error) => output.fail(&[aws_error(
            &format!("cannot start pipeline {}", model.pipeline_name),
            error,
        )]),
    }
}

pub async fn pipeline_status<P: Platform>(
    platform: &P,
    project_dir: &Path,
    args: &PipelineStatusArgs,
    output: &mut Output<'_>,
) -> ExitStatus {
    let environment = match load_environment(project_dir, &args.environment, output) {
        Ok(environment) => environment,
        Err(status) => return status,
    };
    let models = match selected(&environment, args.model.as_deref()) {
        Ok(models) => models,
        Err(error) => return output.fail(&[error]),
    };
    if let Err(error) = guard(platform, &environment).await {
        return output.fail(&[error]);
    }
    for model in models {
        let runs = match platform
            .pipeline_executions(&model.pipeline_name, args.limit)
            .await
        {
            Ok(runs) => runs,
            Err(error) => {
                return output.fail(&[aws_error(
                    &format!("cannot list the runs of {}", model.pipeline_name),
                    error,
                )]);
            }
        };
        let _ = writeln!(output.out, "{} ({})", model.name, model.pipeline_name);
        if runs.is_empty() {
            let _ = writeln!(output.out, "  no runs yet");
        }
        for run in runs {
            let id = run.arn.rsplit('/').next().unwrap_or(&run.arn);
            let line = format!(
                "  {:<14} {:<10} {:<21} {}",
                id,
                run.status,
                run.started.as_deref().unwrap_or("-"),
                run.failure_reason.as_deref().unwrap_or("")
            );
            let _ = writeln!(output.out, "{}", line.trim_end());
        }
    }
    ExitStatus::Success
}

/// Starts the environment's infrastructure build and follows it: each phase as it ends,
/// the log as it grows; the exit status is the build's.
pub async fn ci_run<P: Platform>(
    platform: &P,
    project_dir: &Path,
    args: &CiRunArgs,
    output: &mut Output<'_>,
    context: &Context<'_>,
) -> ExitStatus {
    let environment = match load_environment(project_dir, &args.environment, output) {
        Ok(environment) => environment,
        Err(status) => return status,
    };
    if environment.ci.is_none() {
        return output.fail(&[Error::Usage {
            message: format!(
                "environment `{}` has no CodeBuild project",
                environment.name
            ),
            hint: Some("add a `ci` section to the environment file and apply it".into()),
        }]);
    }
    if let Err(error) = guard(platform, &environment).await {
        return output.fail(&[error]);
    }
    let project = format!("{}-infrastructure", environment.prefix());
    let id = match platform.start_build(&project, &[]).await {
        Ok(id) => id,
        Err(error) => {
            return output.fail(&[aws_error(
                &format!("cannot start a build of {project}"),
                error,
            )]);
        }
    };
    let _ = writeln!(output.err, "started build {id}");
    if args.no_follow {
        let _ = writeln!(output.out, "{id}");
        return ExitStatus::Success;
    }
    let mut shown_phases = 0;
    let mut token: Option<String> = None;
    let mut wait = context.polling.initial;
    loop {
        let build = match platform.build(&id).await {
            Ok(build) => build,
            Err(error) => return output.fail(&[aws_error("cannot read the build", error)]),
        };
        shown_phases = write_phases(output, &build, shown_phases);
        if let Some(stream) = &build.log {
            match platform.log_events(stream, token.as_deref()).await {
                Ok(page) => {
                    for line in page.lines {
                        let _ = writeln!(output.out, "{line}");
                    }
                    token = page.next.or(token);
                }
                Err(error) => {
                    let _ = writeln!(output.err, "warning: cannot read the build log: {error}");
                }
            }
        }
        if build.is_finished() {
            let _ = writeln!(output.err, "build {id}: {}", build.status);
            return if build.status == "SUCCEEDED" {
                ExitStatus::Success
            } else {
                ExitStatus::Failure
            };
        }
        if context.interrupt.is_raised() {
            let _ = writeln!(
                output.err,
                "stopped following; the build goes on: `mlops-infra ci run` again or the CodeBuild console shows it"
            );
            return ExitStatus::Failure;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(context.polling.max);
    }
}

/// Prints the phases that ended since the last call; returns how many are shown.
fn write_phases(output: &mut Output, build: &Build, shown: usize) -> usize {
    let ended: Vec<_> = build
        .phases
        .iter()
        .filter(|phase| phase.status.is_some())
        .collect();
    for phase in ended.iter().skip(shown) {
        let _ = writeln!(
            output.err,
            "phase {:<16} {}{}",
            phase.name,
            phase.status.as_deref().unwrap_or_default(),
            phase
                .seconds
                .map(|seconds| format!(" ({seconds} s)"))
                .unwrap_or_default()
        );
    }
    ended.len().max(shown)
}

/// What `plan` and `apply` call (`aws::calls`): the deploying principal needs each.
pub fn deploy_actions() -> Vec<String> {
    use crate::aws::calls::{CALLS, Command, Target};
    let mut actions: Vec<String> = CALLS
        .iter()
        .filter(|call| {
            call.commands
                .iter()
                .any(|command| matches!(command, Command::Plan | Command::Apply))
                && !matches!(call.target, Target::Nothing | Target::Named)
        })
        .map(|call| call.action.to_string())
        .collect();
    actions.sort();
    actions.dedup();
    actions
}

/// One check's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Finding {
    Ok(String),
    Warning(String),
    Problem(String, String),
}

pub async fn doctor<P: Platform>(
    platform: &P,
    project_dir: &Path,
    args: &EnvironmentArgs,
    output: &mut Output<'_>,
) -> ExitStatus {
    let environment = match load_environment(project_dir, &args.environment, output) {
        Ok(environment) => environment,
        Err(status) => return status,
    };
    let findings = examine(platform, project_dir, &environment).await;
    let mut problems = 0;
    for finding in &findings {
        match finding {
            Finding::Ok(text) => {
                let label = crate::view::status_cell("ok", 8, output.color);
                let _ = writeln!(output.out, "{label} {text}");
            }
            Finding::Warning(text) => {
                let label = crate::view::status_cell("warning", 8, output.color);
                let _ = writeln!(output.out, "{label} {text}");
            }
            Finding::Problem(text, fix) => {
                problems += 1;
                let label = crate::view::status_cell("problem", 8, output.color);
                let _ = writeln!(output.out, "{label} {text}\n         fix: {fix}");
            }
        }
    }
    if problems > 0 {
        let _ = writeln!(
            output.err,
            "{problems} problem(s) stop `mlops-infra apply {}`",
            environment.name
        );
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    }
}

async fn examine<P: Platform>(
    platform: &P,
    project_dir: &Path,
    environment: &Environment,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    let identity = match platform.caller().await {
        Ok(identity) => identity,
        Err(error) => {
            findings.push(Finding::Problem(
                format!("no usable credentials: {error}"),
                match &environment.profile {
                    Some(profile) => format!("log in to profile `{profile}` (`aws sso login --profile {profile}`) or fix it in ~/.aws/config"),
                    None => "set AWS_PROFILE, log in with `aws sso login`, or set `profile` in the environment file".into(),
                },
            ));
            return findings;
        }
    };
    findings.push(Finding::Ok(format!("credentials: {}", identity.arn)));
    if identity.account == environment.account_id {
        findings.push(Finding::Ok(format!(
            "account {} matches `account_id`",
            identity.account
        )));
    } else {
        findings.push(Finding::Problem(
            format!(
                "the credentials are for account {}, the environment is in {}",
                identity.account, environment.account_id
            ),
            "use credentials (profile) of the environment's account".into(),
        ));
    }
    findings.push(Finding::Ok(format!(
        "region {} (from the environment file; every command uses it)",
        environment.region
    )));

    let rendered = render::render(project_dir, environment);
    match &rendered {
        Ok(stacks) => {
            for role in expected_roles(stacks) {
                findings.push(match platform.role_arn(&role).await {
                    Ok(Some(_)) => Finding::Ok(format!("role {role} exists")),
                    Ok(None) => Finding::Warning(format!(
                        "role {role} does not exist yet; `apply` creates it (iam stack)"
                    )),
                    Err(error) => Finding::Warning(format!("cannot check role {role}: {error}")),
                });
            }
        }
        Err(errors) => findings.push(Finding::Problem(
            format!(
                "the environment does not render ({} error(s))",
                errors.len()
            ),
            format!("run `mlops-infra validate {}`", environment.name),
        )),
    }

    let principal = match session_role(&identity.arn) {
        // The simulator takes the role's own ARN, path included, which only IAM knows.
        Some(role) => match platform.role_arn(role).await {
            Ok(Some(arn)) => arn,
            _ => principal_arn(&identity.arn),
        },
        None => identity.arn.clone(),
    };
    let actions = deploy_actions();
    match platform
        .simulate(&principal, &Simulation::actions(&actions))
        .await
    {
        Ok(decisions) => {
            let denied: Vec<&str> = decisions
                .iter()
                .filter(|decision| !decision.is_allowed())
                .map(|decision| decision.action.as_str())
                .collect();
            if denied.is_empty() {
                findings.push(Finding::Ok(format!(
                    "{principal} may call the {} actions apply needs",
                    actions.len()
                )));
            } else {
                findings.push(Finding::Problem(
                    format!("{principal} may not call: {}", denied.join(", ")),
                    "grant these actions to the deploying role (see docs/release.md)".into(),
                ));
            }
        }
        Err(error) => findings.push(Finding::Warning(format!(
            "cannot simulate the deploy permissions of {principal}: {error}"
        ))),
    }
    if let Ok(stacks) = &rendered {
        simulate_roles(platform, environment, stacks, &mut findings).await;
    }
    findings
}

/// A resource and the condition keys of the requests simulated on it.
type SimulationKey = (String, Vec<(String, String)>);

/// The deployed roles against what the permission analysis says each needs, through IAM's
/// policy simulator: one call per resource, with the request's condition keys.
async fn simulate_roles<P: Platform>(
    platform: &P,
    environment: &Environment,
    stacks: &[render::RenderedStack],
    findings: &mut Vec<Finding>,
) {
    let resolver = crate::iam::resolve::Resolver::new(environment, stacks);
    let mut by_role: BTreeMap<String, Vec<crate::iam::requirements::Requirement>> = BTreeMap::new();
    for requirement in crate::iam::requirements::requirements(&resolver) {
        by_role
            .entry(requirement.role_arn.clone())
            .or_default()
            .push(requirement);
    }
    for (role_arn, needed) in by_role {
        let name = role_arn.rsplit('/').next().unwrap_or(&role_arn);
        let principal = match platform.role_arn(name).await {
            Ok(Some(arn)) => arn,
            // Reported above: not deployed yet, or not readable.
            _ => continue,
        };
        // A name made at run time (a job, a package version: `⟨job⟩`) stands for any name,
        // so a simulated one asks the same; a deployed resource's own id (`⟨storage/DataKey⟩`)
        // cannot be asked without reading the stacks.
        let (known, unknown): (Vec<_>, Vec<_>) = needed
            .iter()
            .partition(|requirement| !has_deployed_placeholder(&requirement.resource));
        let mut groups: BTreeMap<SimulationKey, Vec<String>> = BTreeMap::new();
        for requirement in &known {
            let resource = simulated_name(&requirement.resource);
            let context: Vec<(String, String)> = requirement
                .context
                .iter()
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect();
            let actions = groups.entry((resource, context)).or_default();
            if !actions.contains(&requirement.action) {
                actions.push(requirement.action.clone());
            }
        }
        let mut denied = Vec::new();
        for ((resource, context), actions) in groups {
            let simulation = Simulation {
                actions,
                resources: if resource == "*" {
                    Vec::new()
                } else {
                    vec![resource]
                },
                context,
            };
            match platform.simulate(&principal, &simulation).await {
                Ok(decisions) => denied.extend(
                    decisions
                        .into_iter()
                        .filter(|decision| !decision.is_allowed())
                        .map(|decision| format!("{} on {}", decision.action, decision.resource)),
                ),
                Err(error) => {
                    findings.push(Finding::Warning(format!(
                        "cannot simulate the platform's roles: {error}"
                    )));
                    return;
                }
            }
        }
        if denied.is_empty() {
            findings.push(Finding::Ok(format!(
                "role {name} may do the {} things it is needed for ({} on resources named only once deployed not simulated)",
                known.len(),
                unknown.len()
            )));
        } else {
            let shown: Vec<&str> = denied.iter().take(10).map(String::as_str).collect();
            let more = denied.len().saturating_sub(shown.len());
            findings.push(Finding::Problem(
                format!(
                    "role {name} as deployed may not: {}{}",
                    shown.join(", "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                ),
                format!(
                    "apply the iam stack (`mlops-infra apply {} --stack iam`) so the deployed role matches the templates",
                    environment.name
                ),
            ));
        }
    }
}

/// Whether an ARN holds a placeholder for a deployed resource's id (`⟨stack/Logical⟩`).
fn has_deployed_placeholder(arn: &str) -> bool {
    arn.split('⟨').skip(1).any(|rest| {
        rest.split('⟩')
            .next()
            .is_some_and(|inside| inside.contains('/'))
    })
}

/// Run-time names (`⟨job⟩`) replaced by a concrete one the simulator can evaluate.
fn simulated_name(arn: &str) -> String {
    let mut out = String::new();
    let mut rest = arn;
    while let Some(start) = rest.find('⟨') {
        out.push_str(&rest[..start]);
        match rest[start..].find('⟩') {
            Some(end) => {
                out.push_str("mlops-infra-simulated");
                rest = &rest[start + end + '⟩'.len_utf8()..];
            }
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The IAM roles the environment's templates create, by name.
fn expected_roles(stacks: &[render::RenderedStack]) -> Vec<String> {
    stacks
        .iter()
        .flat_map(|stack| stack.template.resources.values())
        .filter(|resource| resource.resource_type == "AWS::IAM::Role")
        .filter_map(|resource| resource.properties.get("RoleName")?.as_str())
        .map(str::to_string)
        .collect()
}

/// The role name of an assumed-role session (`arn:aws:sts::A:assumed-role/NAME/SESSION`).
fn session_role(arn: &str) -> Option<&str> {
    let (_, rest) = arn.split_once(":assumed-role/")?;
    rest.split('/').next()
}

/// What the policy simulator takes when IAM cannot say: an assumed-role session's role
/// without a path (`arn:aws:iam::A:role/NAME`); other ARNs as they are.
fn principal_arn(arn: &str) -> String {
    let (Some(role), Some((prefix, _))) = (session_role(arn), arn.split_once(":assumed-role/"))
    else {
        return arn.to_string();
    };
    format!("{}:role/{role}", prefix.replacen(":sts:", ":iam:", 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assumed_role_sessions_simulate_as_their_role() {
        assert_eq!(
            principal_arn("arn:aws:sts::111122223333:assumed-role/deployer/alice"),
            "arn:aws:iam::111122223333:role/deployer"
        );
        assert_eq!(
            principal_arn("arn:aws:iam::111122223333:user/alice"),
            "arn:aws:iam::111122223333:user/alice"
        );
        assert_eq!(
            session_role("arn:aws:sts::111122223333:assumed-role/deployer/alice"),
            Some("deployer")
        );
        assert_eq!(session_role("arn:aws:iam::111122223333:user/alice"), None);
    }

    #[test]
    fn params_must_be_declared_key_values() {
        let declared = vec!["InputDataUri".to_string(), "AccuracyThreshold".to_string()];
        assert_eq!(
            parse_params(&["InputDataUri=s3://b/k=v/".into()], &declared).expect("parses"),
            [("InputDataUri".to_string(), "s3://b/k=v/".to_string())]
        );
        let typo = parse_params(&["InputDataURI=s3://b/".into()], &declared).expect_err("typo");
        assert_eq!(typo.hint(), Some("did you mean `InputDataUri`?"));
        assert!(parse_params(&["InputDataUri".into()], &declared).is_err());
    }
}
