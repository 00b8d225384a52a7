//! End to end against the local AWS: apply staging from nothing, plan shows no changes, a
//! config change shows the expected diff and applies, a bucket rename in a protected
//! environment is refused, a saved plan goes stale, destroy removes the stacks.

mod common;

use common::{LocalAws, edit, project_copy, run_in_terminal, run_with};

const ACCOUNT: &str = "222222222222";
const REGION: &str = "eu-west-1";

/// The closing summary of an apply: one line per stack.
fn summary(stderr: &str) -> &str {
    stderr
        .rsplit_once("summary:")
        .map_or("", |(_, summary)| summary)
}

#[test]
fn staging_applies_plans_clean_changes_and_is_destroyed() {
    let aws = LocalAws::start(ACCOUNT);
    let environment = aws.environment(REGION);
    let project = project_copy();
    let dir = project.path();
    let run = |args: &[&str]| run_with(dir, args, &environment);

    // The first apply as a person sees it, on a terminal 120 columns wide: the live view's
    // rows, one per stack, none wrapped, then the summary.
    let (code, terminal) = run_in_terminal(dir, &["apply", "staging", "--yes"], &environment, 120);
    let screen = terminal.screen();
    assert_eq!(code, 0, "apply from nothing:\n{}", screen.contents());
    let live: Vec<u16> = (0..50)
        .filter(|&row| {
            screen
                .contents_between(row, 0, row, 120)
                .starts_with("  mlops-images-staging-")
        })
        .collect();
    assert_eq!(live.len(), 15, "{}", screen.contents());
    for &row in &live {
        let text = screen.contents_between(row, 0, row, 120);
        assert!(text.contains("done (CREATE_COMPLETE)"), "{text}");
        assert!(!screen.row_wrapped(row), "{text}");
    }
    assert!(
        screen
            .contents()
            .contains("Apply complete: 15 created, 0 updated, 0 unchanged, 0 failed"),
        "{}",
        screen.contents()
    );

    assert_step_code_is_where_the_pipelines_read_it(&aws);

    let clean = run(&["plan", "staging", "--detailed-exitcode"]);
    assert_eq!(
        clean.code, 0,
        "plan after apply:\n{}{}",
        clean.stdout, clean.stderr
    );
    assert!(
        clean
            .stdout
            .contains("Stacks: 0 to create, 0 to update, 15 unchanged."),
        "{}",
        clean.stdout
    );

    // A lifecycle change: exactly the two buckets change, nothing is replaced.
    edit(
        dir,
        "environments/staging.yaml",
        "noncurrent_version_expiration_days: 30",
        "noncurrent_version_expiration_days: 45",
    );
    let changed = run(&["plan", "staging", "--detailed-exitcode", "--output", "json"]);
    assert_eq!(changed.code, 2, "{}", changed.stderr);
    let plan: serde_json::Value = serde_json::from_str(&changed.stdout).expect("json plan");
    let updated: Vec<&str> = plan["stacks"]
        .as_array()
        .expect("stacks")
        .iter()
        .filter(|stack| stack["action"] == "update")
        .map(|stack| stack["id"].as_str().expect("id"))
        .collect();
    assert_eq!(updated, vec!["storage"]);
    let storage = &plan["stacks"][0];
    let resources: Vec<&str> = storage["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| r["logical_id"].as_str().expect("id"))
        .collect();
    assert_eq!(resources, vec!["DataBucket", "ArtifactsBucket"]);
    assert_eq!(storage["resources"][0]["replacement"], "no");
    assert_eq!(
        storage["resources"][0]["changes"][0]["path"],
        "Properties.LifecycleConfiguration.Rules[0].NoncurrentVersionExpiration.NoncurrentDays"
    );

    // Saved, then made stale by applying the change another way.
    let saved = dir.join("staging.plan.json");
    let saving = run(&["plan", "staging", "--out", &saved.to_string_lossy()]);
    assert_eq!(saving.code, 0, "{}", saving.stderr);
    let applied = run(&["apply", "staging", "--yes"]);
    assert_eq!(applied.code, 0, "apply the change:\n{}", applied.stderr);
    let applied_summary = summary(&applied.stderr);
    assert!(
        applied_summary
            .contains("mlops-images-staging-storage                  done (UPDATE_COMPLETE)"),
        "{applied_summary}"
    );
    assert_eq!(
        applied_summary.matches("no changes").count(),
        14,
        "{applied_summary}"
    );
    let stale = run(&["apply", &saved.to_string_lossy(), "--yes"]);
    assert_eq!(stale.code, 1);
    assert!(
        stale
            .stderr
            .contains("the saved plan is stale: mlops-images-staging-storage changed"),
        "{}",
        stale.stderr
    );
    let clean = run(&["plan", "staging", "--detailed-exitcode"]);
    assert_eq!(clean.code, 0, "{}", clean.stdout);

    // A new child model: its stacks are created, the shared stacks that list models update
    // (the API's deployment is replaced under its stage), and the result plans clean.
    edit(
        dir,
        "environments/staging.yaml",
        "routes: [trees, flowers, grasses]",
        "routes: [trees, flowers, grasses, shrubs]",
    );
    edit(
        dir,
        "environments/staging.yaml",
        "models:\n",
        "models:\n  - name: shrubs\n    parent: plants\n    subgroup: shrubs\n    num_classes: 12\n",
    );
    let grown_plan = run(&["plan", "staging"]);
    assert!(
        !grown_plan.stdout.contains("uploads "),
        "the step code is already uploaded:\n{}",
        grown_plan.stdout
    );
    let grown = run(&["apply", "staging", "--yes"]);
    assert_eq!(grown.code, 0, "apply a new child:\n{}", grown.stderr);
    let grown_summary = summary(&grown.stderr);
    for created in ["pipeline-shrubs", "endpoint-shrubs"] {
        assert!(
            grown_summary.contains(&format!("mlops-images-staging-{created}")),
            "{grown_summary}"
        );
    }
    assert!(
        grown_summary
            .lines()
            .any(|line| line.contains("mlops-images-staging-api ")
                && line.contains("done (UPDATE_COMPLETE)")),
        "{grown_summary}"
    );
    let clean = run(&["plan", "staging", "--detailed-exitcode"]);
    assert_eq!(clean.code, 0, "{}", clean.stdout);

    // Protected: a bucket rename replaces a data-bearing resource and is refused.
    edit(
        dir,
        "environments/staging.yaml",
        "extends: _common\n",
        "extends: _common\nprotected: true\nstorage:\n  data_bucket_name: mlops-images-staging-renamed-data\n",
    );
    edit(
        dir,
        "environments/staging.yaml",
        "storage:\n  noncurrent_version_expiration_days: 45\n",
        "",
    );
    let refused = run(&["apply", "staging", "--yes"]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("refusing to replace DataBucket (AWS::S3::Bucket)"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("--allow-replace DataBucket"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("replaces (BucketName)  DANGEROUS"),
        "{}",
        refused.stderr
    );
    let unchanged = run(&["outputs", "staging"]);
    assert!(
        unchanged
            .stdout
            .contains("storage.DataBucketName = mlops-images-staging-data-222222222222"),
        "{}",
        unchanged.stdout
    );

    let destroyed = run(&["destroy", "staging", "--yes", "--force"]);
    assert_eq!(destroyed.code, 0, "{}", destroyed.stderr);
    assert!(
        destroyed
            .stderr
            .contains("kept (DeletionPolicy Retain): DataKey (AWS::KMS::Key)"),
        "{}",
        destroyed.stderr
    );
    let status = run(&["status", "staging"]);
    assert_eq!(
        status.stdout.matches("NOT_DEPLOYED").count(),
        17,
        "{}",
        status.stdout
    );
    // What the destroy kept is found by name before the next apply trips over it.
    let replan = run(&["plan", "staging"]);
    for kept in [
        "bucket mlops-images-staging-artifacts-222222222222 already exists outside any stack",
        "model package group mlops-images-staging-trees already exists outside any stack",
        "log group /aws/apigateway/mlops-images-staging-pipelines already exists outside any stack",
    ] {
        assert!(replan.stdout.contains(kept), "{kept}:\n{}", replan.stdout);
    }
}

/// Every processing step of every deployed pipeline reads its script from an S3 object that
/// exists and holds the repository's `steps/<script>`, read back with boto3.
fn assert_step_code_is_where_the_pipelines_read_it(aws: &LocalAws) {
    let found = aws.boto3(
        REGION,
        r#"
import boto3, json
sm, s3 = boto3.client("sagemaker"), boto3.client("s3")
code = {}
for summary in sm.list_pipelines()["PipelineSummaries"]:
    definition = json.loads(sm.describe_pipeline(PipelineName=summary["PipelineName"])["PipelineDefinition"])
    for step in definition["Steps"]:
        if step["Type"] != "Processing":
            continue
        script = step["Arguments"]["AppSpecification"]["ContainerEntrypoint"][-1].rsplit("/", 1)[1]
        for item in step["Arguments"]["ProcessingInputs"]:
            if item["InputName"] == "code":
                # Every script imports parallel.py, which apply uploads beside them.
                for name in (script, "requirements.txt", "parallel.py"):
                    uri = item["S3Input"]["S3Uri"] + name
                    bucket, key = uri[len("s3://"):].split("/", 1)
                    code[uri] = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
print(json.dumps(code))
"#,
    );
    let code: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&found).expect("json");
    let scripts: std::collections::BTreeSet<&str> = code
        .keys()
        .filter_map(|uri| uri.rsplit('/').next())
        .collect();
    assert_eq!(
        scripts,
        [
            "data_quality.py",
            "evaluate.py",
            "merge_manifests.py",
            "merge_records.py",
            "parallel.py",
            "preprocess.py",
            "requirements.txt"
        ]
        .into(),
        "{code:?}"
    );
    for (uri, body) in &code {
        let script = uri.rsplit('/').next().expect("file name");
        let local =
            std::fs::read_to_string(common::repo().join("steps").join(script)).expect("script");
        assert_eq!(body, &local, "{uri} differs from steps/{script}");
        assert!(uri.contains("/code/"), "{uri}");
    }
}

#[test]
fn credentials_of_another_account_are_refused() {
    let aws = LocalAws::start("999999999999");
    let result = run_with(
        &common::repo(),
        &["plan", "staging"],
        &aws.environment(REGION),
    );
    assert_eq!(result.code, 1, "{}", result.stderr);
    assert!(
        result.stderr.contains("the credentials in use belong to account 999999999999, but environment `staging` lives in account 222222222222"),
        "{}",
        result.stderr
    );
}

#[test]
fn a_name_taken_outside_the_stacks_fails_its_change_set_with_the_validations_own_words() {
    let aws = LocalAws::start(ACCOUNT);
    let environment = aws.environment(REGION);
    let project = project_copy();
    // Someone made the retrain function's log group by hand.
    aws.boto3(
        REGION,
        "import boto3; boto3.client('logs').create_log_group(logGroupName='/aws/lambda/mlops-images-staging-retrain')",
    );
    let applied = run_with(project.path(), &["apply", "staging", "--yes"], &environment);
    assert_eq!(applied.code, 1, "{}", applied.stderr);
    // CloudFormation's pre-deployment validation refused the change set; its own message,
    // read through DescribeEvents, comes first.
    assert!(
        applied.stderr.contains(
            "the change set failed validation: NAME_CONFLICT_VALIDATION at /Resources/LogGroup: Resource of type 'AWS::Logs::LogGroup' with identifier '/aws/lambda/mlops-images-staging-retrain' already exists."
        ),
        "{}",
        applied.stderr
    );
}
