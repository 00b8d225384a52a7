//! Drift against the local AWS: staging applied, a log group's retention and a function's
//! memory changed by hand, then `status --drift` and `plan --refresh` as a person runs them,
//! and `apply --revert-drift` putting both back.

mod common;

use common::{LocalAws, project_copy, run_with};

const ACCOUNT: &str = "222222222222";
const REGION: &str = "eu-west-1";
const ROUTER: &str = "mlops-images-staging-router-plants";

#[test]
fn drift_made_by_hand_is_shown_and_put_back() {
    let aws = LocalAws::start(ACCOUNT);
    let environment = aws.environment(REGION);
    let project = project_copy();
    let run = |args: &[&str]| run_with(project.path(), args, &environment);
    let applied = run(&["apply", "staging", "--yes"]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);

    let clean = run(&["status", "staging", "--drift"]);
    assert_eq!(clean.code, 0, "{}", clean.stderr);
    assert!(!clean.stdout.contains("DRIFTED"), "{}", clean.stdout);

    aws.boto3(
        REGION,
        &format!(
            "import boto3\n\
             boto3.client('logs').put_retention_policy(logGroupName='/aws/lambda/{ROUTER}', retentionInDays=7)\n\
             boto3.client('lambda').update_function_configuration(FunctionName='{ROUTER}', MemorySize=1024)"
        ),
    );
    let status = run(&["status", "staging", "--drift"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(
        status.stdout.contains(&format!("{ROUTER}: LogGroup (AWS::Logs::LogGroup) was changed outside CloudFormation\n  RetentionInDays: 90 (template) → 7 (actual)")),
        "{}",
        status.stdout
    );
    assert!(
        status
            .stdout
            .contains("  MemorySize: 256 (template) → 1024 (actual)"),
        "{}",
        status.stdout
    );
    assert!(status.stdout.contains("DRIFTED (2)"), "{}", status.stdout);

    let plan = run(&["plan", "staging", "--refresh", "--detailed-exitcode"]);
    assert_eq!(
        plan.code, 0,
        "drift alone changes nothing:\n{}{}",
        plan.stdout, plan.stderr
    );
    assert!(plan.stdout.contains(
        "~ drift: LogGroup RetentionInDays was changed outside CloudFormation to 7; untouched by this apply (template: 90; `--revert-drift` puts it back)"
    ), "{}", plan.stdout);
    assert!(plan.stdout.contains(
        "Drift: 2 resource(s) in 1 stack(s) changed outside CloudFormation; `apply --revert-drift` puts them back."
    ), "{}", plan.stdout);

    let reverted = run(&["apply", "staging", "--yes", "--revert-drift"]);
    assert_eq!(reverted.code, 0, "{}", reverted.stderr);
    let after = run(&["status", "staging", "--drift"]);
    assert!(
        !after.stdout.contains("DRIFTED"),
        "put back:\n{}",
        after.stdout
    );
    let retention = aws.boto3(
        REGION,
        &format!(
            "import boto3\n\
             groups = boto3.client('logs').describe_log_groups(logGroupNamePrefix='/aws/lambda/{ROUTER}')['logGroups']\n\
             print(groups[0]['retentionInDays'])"
        ),
    );
    assert_eq!(retention.trim(), "90");
}
