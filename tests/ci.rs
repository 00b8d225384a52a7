//! The self-deploy build's steps (`scripts/ci-build`, which buildspec.yml runs) against the
//! local AWS: a first build plans and applies, keeping the plan; a second finds nothing to do.
//! With IAM enforced, the build runs as the platform's CodeBuild role after a person's
//! bootstrap, and applies through the CloudFormation role.

mod common;

use std::process::Command;

use common::{LocalAws, project_copy, repo};

const REGION: &str = "eu-west-1";

fn ci_build(
    aws: &LocalAws,
    project: &std::path::Path,
    artifacts: &std::path::Path,
) -> (i32, String, String) {
    ci_build_with(aws.environment(REGION), project, artifacts)
}

fn ci_build_with(
    environment: Vec<(&str, &str)>,
    project: &std::path::Path,
    artifacts: &std::path::Path,
) -> (i32, String, String) {
    let output = Command::new(repo().join("scripts/ci-build"))
        .arg("infrastructure")
        .envs(environment)
        .env("MLOPS_ENVIRONMENT", "staging")
        .env("MLOPS_INFRA", env!("CARGO_BIN_EXE_mlops-infra"))
        .env("MLOPS_PROJECT_DIR", project)
        .env("MLOPS_ARTIFACTS_DIR", artifacts)
        .output()
        .expect("scripts/ci-build runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_build_plans_keeps_the_plan_and_applies_it() {
    let aws = LocalAws::start("222222222222");
    let project = project_copy();
    let artifacts = tempfile::tempdir().expect("artifacts");

    let (code, stdout, stderr) = ci_build(&aws, project.path(), artifacts.path());
    assert_eq!(code, 0, "first build:\n{stdout}\n{stderr}");
    let plan = std::fs::read_to_string(artifacts.path().join("plan.md")).expect("plan.md kept");
    assert!(
        plan.starts_with("### mlops-infra plan: `staging`"),
        "{plan}"
    );
    assert!(
        plan.contains("Stacks: 15 to create, 0 to update, 0 unchanged."),
        "{plan}"
    );
    let saved: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(artifacts.path().join("plan.json")).expect("plan.json kept"),
    )
    .expect("a saved plan");
    assert_eq!(saved["environment"], "staging");
    assert!(stderr.contains("==> apply the reviewed plan"), "{stderr}");
    let summary = stderr
        .rsplit_once("summary:")
        .map_or("", |(_, summary)| summary);
    assert_eq!(
        summary.matches("done (CREATE_COMPLETE)").count(),
        15,
        "{stderr}"
    );

    let (code, _, stderr) = ci_build(&aws, project.path(), artifacts.path());
    assert_eq!(code, 0, "second build:\n{stderr}");
    assert!(
        stderr.contains("==> no changes: nothing to apply"),
        "{stderr}"
    );
    assert!(!stderr.contains("apply the reviewed plan"), "{stderr}");
}

/// A person applies the bootstrap (storage, iam) with the account's own credentials; the
/// build then runs as the CodeBuild role, every API call checked against its policies.
fn bootstrap_then_build(
    project: &std::path::Path,
    before_build: impl FnOnce(&LocalAws),
) -> (LocalAws, i32, String, String) {
    let aws = LocalAws::start_enforcing_iam("222222222222");
    let bootstrap = Command::new(env!("CARGO_BIN_EXE_mlops-infra"))
        .args(["-C", &project.to_string_lossy(), "--color", "never"])
        .args([
            "apply", "staging", "--stack", "storage", "--stack", "iam", "--yes",
        ])
        .envs(aws.environment(REGION))
        .output()
        .expect("mlops-infra runs");
    assert!(
        bootstrap.status.success(),
        "bootstrap:\n{}",
        String::from_utf8_lossy(&bootstrap.stderr)
    );
    before_build(&aws);
    let profiles = tempfile::tempdir().expect("profiles");
    // As the build's credentials are on AWS: the platform's CodeBuild role.
    let (config, credentials) = common::assume_role_profile(
        profiles.path(),
        "codebuild",
        "arn:aws:iam::222222222222:role/mlops-images/mlops-images-staging-codebuild",
    );
    let artifacts = tempfile::tempdir().expect("artifacts");
    let environment = vec![
        ("AWS_ENDPOINT_URL", aws.url.as_str()),
        ("AWS_CONFIG_FILE", config.as_str()),
        ("AWS_SHARED_CREDENTIALS_FILE", credentials.as_str()),
        ("AWS_PROFILE", "codebuild"),
        ("AWS_REGION", REGION),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let (code, stdout, stderr) = ci_build_with(environment, project, artifacts.path());
    (aws, code, stdout, stderr)
}

#[test]
fn the_build_runs_as_the_codebuild_role_and_applies_through_the_cloudformation_role() {
    let project = project_copy();
    let (aws, code, stdout, stderr) = bootstrap_then_build(project.path(), |_| {});
    assert_eq!(
        code,
        0,
        "build as the CodeBuild role:\n{stdout}\n{stderr}\n{}",
        aws.log()
    );
    assert!(
        stdout.contains("Stacks: 13 to create, 0 to update, 2 unchanged."),
        "{stdout}"
    );
    let roles = aws.boto3(
        REGION,
        r#"
import boto3
cfn = boto3.client("cloudformation")
for stack in cfn.describe_stacks()["Stacks"]:
    print(stack["StackName"], stack.get("RoleARN", "-"))
"#,
    );
    let role = "arn:aws:iam::222222222222:role/mlops-images/mlops-images-staging-cloudformation";
    for line in roles.lines() {
        let (name, deployed_by) = line.split_once(' ').expect("name and role");
        let bootstrap = name.ends_with("-storage") || name.ends_with("-iam");
        assert_eq!(deployed_by == role, !bootstrap, "{line}");
    }
    assert_eq!(roles.lines().count(), 15, "{roles}");
}

#[test]
fn a_permission_missing_from_the_codebuild_role_stops_the_build() {
    let project = project_copy();
    // The deployed role loses one action the build needs (the templates still grant it, so
    // the offline analysis passes): the local AWS refuses the call as AWS would.
    let (_aws, code, stdout, stderr) = bootstrap_then_build(project.path(), |aws| {
        aws.boto3(
            REGION,
            r#"
import boto3, json
iam = boto3.client("iam")
role = "mlops-images-staging-codebuild"
name = "deploy-through-cloudformation"
document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
if isinstance(document, str):
    document = json.loads(document)
for statement in document["Statement"]:
    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
    statement["Action"] = [a for a in actions if a != "cloudformation:ExecuteChangeSet"]
iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document))
"#,
        );
    });
    assert_ne!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("cloudformation:ExecuteChangeSet"),
        "the refusal names the action:\n{stderr}"
    );
}
