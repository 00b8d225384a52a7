//! The offline permission analysis on the shipped environments: they pass; removing any one
//! action a role needs makes the analysis name it; and `validate` fails on a real template
//! edit, naming the role, action, resource and what needs it.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{edit, project_copy, repo, run};
use mlops_infra::iam::policy::{Patterns, glob};
use mlops_infra::iam::requirements::requirements;
use mlops_infra::iam::resolve::Resolver;
use mlops_infra::iam::roles::{Role, roles};
use mlops_infra::iam::{Problem, analyse, check};
use mlops_infra::render::{RenderedStack, render};

fn rendered(
    project: &Path,
    environment: &str,
) -> (mlops_infra::config::Environment, Vec<RenderedStack>) {
    let environment = mlops_infra::config::load(project, environment).expect("valid");
    let stacks = render(project, &environment).expect("renders");
    (environment, stacks)
}

#[test]
fn the_shipped_environments_pass_the_analysis() {
    for name in ["dev", "staging", "prod"] {
        let (environment, stacks) = rendered(&repo(), name);
        let findings = analyse(&environment, &stacks);
        assert!(findings.is_empty(), "{name}: {findings:#?}");
    }
}

#[test]
fn every_role_the_platform_deploys_with_has_requirements() {
    let (environment, stacks) = rendered(&repo(), "staging");
    let resolver = Resolver::new(&environment, &stacks);
    let needed = requirements(&resolver);
    let roles: BTreeSet<&str> = needed
        .iter()
        .map(|r| r.role_arn.rsplit('/').next().unwrap_or_default())
        .collect();
    for role in [
        "mlops-images-staging-cloudformation",
        "mlops-images-staging-pipeline-execution",
        "mlops-images-staging-sagemaker-execution",
        "mlops-images-staging-events",
        "mlops-images-staging-api",
        "mlops-images-staging-codebuild",
        "mlops-images-staging-router-plants",
    ] {
        assert!(
            roles.contains(role),
            "{role} has no requirements: {roles:?}"
        );
    }
    // The denials the analysis exists for are among them.
    let has = |role: &str, action: &str, resource: &str| {
        needed.iter().any(|r| {
            r.role_arn.ends_with(role) && r.action == action && glob(resource, &r.resource)
        })
    };
    assert!(has(
        "-cloudformation",
        "sagemaker:GetModelPackageGroupPolicy",
        "arn:aws:sagemaker:eu-west-1:222222222222:model-package-group/mlops-images-staging-plants"
    ));
    assert!(has(
        "-cloudformation",
        "sagemaker:CreateEndpoint",
        "arn:aws:sagemaker:eu-west-1:222222222222:endpoint-config/*"
    ));
    assert!(has(
        "-cloudformation",
        "sagemaker:CreateEndpoint",
        "arn:aws:sagemaker:eu-west-1:222222222222:endpoint/mlops-images-staging-plants"
    ));
    assert!(has(
        "-pipeline-execution",
        "iam:PassRole",
        "arn:aws:iam::222222222222:role/mlops-images/mlops-images-staging-sagemaker-execution"
    ));
    assert!(has(
        "-sagemaker-execution",
        "s3:GetObject",
        "arn:aws:s3:::mlops-images-staging-data-222222222222/*"
    ));
    assert!(has(
        "-api",
        "sagemaker:StartPipelineExecution",
        "arn:aws:sagemaker:eu-west-1:222222222222:pipeline/mlops-images-staging-plants"
    ));
    assert!(has(
        "-codebuild",
        "iam:PassRole",
        "arn:aws:iam::222222222222:role/mlops-images/mlops-images-staging-cloudformation"
    ));
    assert!(has(
        "-router-plants",
        "sagemaker:InvokeEndpoint",
        "arn:aws:sagemaker:eu-west-1:222222222222:endpoint/mlops-images-staging-trees"
    ));
    // What the reviewed rules excuse is not asked for: no bucket replication, no S3 Tables.
    assert!(!needed.iter().any(|r| r.action.starts_with("s3tables:")));
}

/// The role with every action pattern that covers `action` removed from its statements.
fn without(role: &Role, action: &str) -> Role {
    let mut role = role.clone();
    for policy in &mut role.policies {
        for statement in &mut policy.statements {
            if let Patterns::Only(actions) = &mut statement.actions {
                actions.retain(|pattern| !glob(&pattern.to_lowercase(), &action.to_lowercase()));
            }
        }
    }
    role
}

#[test]
fn removing_any_required_action_is_named() {
    let (environment, stacks) = rendered(&repo(), "staging");
    let resolver = Resolver::new(&environment, &stacks);
    let all_roles = roles(&resolver);
    let needed = requirements(&resolver);
    assert!(check(&all_roles, &needed).is_empty());
    let pairs: BTreeSet<(String, String)> = needed
        .iter()
        .filter(|r| r.action != "sts:GetCallerIdentity")
        .map(|r| (r.role_arn.clone(), r.action.to_lowercase()))
        .collect();
    assert!(pairs.len() > 150, "{} actions", pairs.len());
    for (role_arn, action) in &pairs {
        let logical_id = &all_roles
            .iter()
            .find(|role| &role.arn == role_arn)
            .expect("a defined role")
            .logical_id;
        let mutated: Vec<Role> = all_roles
            .iter()
            .map(|role| {
                if &role.arn == role_arn {
                    without(role, action)
                } else {
                    role.clone()
                }
            })
            .collect();
        let findings = check(&mutated, &needed);
        assert!(
            findings
                .iter()
                .any(|finding| finding.action.to_lowercase() == *action
                    && finding.problem == Problem::NotAllowed
                    && &finding.role == logical_id),
            "removing {action} from {role_arn} went unnoticed"
        );
    }
}

#[test]
fn validate_names_a_permission_removed_from_the_template() {
    let project = project_copy();
    edit(
        project.path(),
        "templates/iam.yaml.tera",
        "sagemaker:GetModelPackageGroupPolicy, ",
        "",
    );
    let result = run(project.path(), &["validate", "staging"]);
    assert_eq!(result.code, 1, "{}", result.stderr);
    assert!(
        result.stderr.contains(
            "role CloudFormationRole is not allowed sagemaker:GetModelPackageGroupPolicy on \
             arn:aws:sagemaker:eu-west-1:222222222222:model-package-group/mlops-images-staging-plants \
             (needed by pipeline-plants: ModelPackageGroup (AWS::SageMaker::ModelPackageGroup, create))"
        ),
        "{}",
        result.stderr
    );
    assert!(
        result
            .stderr
            .contains("hint: allow `sagemaker:GetModelPackageGroupPolicy` on"),
        "{}",
        result.stderr
    );
}

#[test]
fn a_deny_statement_is_reported_as_a_deny() {
    let project = project_copy();
    edit(
        project.path(),
        "templates/iam.yaml.tera",
        "              - Sid: StartDeployBuilds\n",
        "              - Sid: NoPipelines\n                Effect: Deny\n                Action: sagemaker:StartPipelineExecution\n                Resource: \"*\"\n              - Sid: StartDeployBuilds\n",
    );
    let result = run(project.path(), &["validate", "staging"]);
    assert_eq!(result.code, 1, "{}", result.stderr);
    assert!(
        result.stderr.contains(
            "role EventsRole is denied sagemaker:StartPipelineExecution on \
             arn:aws:sagemaker:eu-west-1:222222222222:pipeline/mlops-images-staging-plants by statement NoPipelines"
        ),
        "{}",
        result.stderr
    );
}
