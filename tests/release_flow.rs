//! The release flow end to end on the local AWS, with staging (222222222222) and prod
//! (333333333333) as two accounts of one emulator: prod is reached through a profile that
//! assumes a role there, as a real cross-account setup does.
//!
//! apply staging → a pipeline registers a package → `models` → `approve` → `plan` shows the
//! endpoint switching to it → apply → `test staging` (a wrong answer fails it, a right one
//! passes) → `promote` (refused until the test passed) → prod serves the package → plans clean.
//!
//! What the emulator cannot do: it runs no model. moto's InvokeEndpoint answers with bodies
//! queued through its `/moto-api/static/sagemaker/endpoint-results` API, so the answers are
//! the test's; what `test` does with them (shape, latency, the record) is the tool's own.
//! The same checks run against the in-memory fake in `tests/release.rs`.

mod common;

use std::path::Path;

use common::{LocalAws, Run, edit, project_copy, run_with};

const STAGING: &str = "222222222222";
const REGION: &str = "eu-west-1";
const GROUP: &str = "mlops-images-staging-trees";

/// AWS config and credentials files: the default profile is staging's account (the
/// emulator's default), `prod` assumes a role in prod's account.
fn profiles(dir: &Path) -> (String, String) {
    common::assume_role_profile(dir, "prod", "arn:aws:iam::333333333333:role/mlops-deployer")
}

/// Registers a package in `GROUP` as the pipeline's Register step does, with its evaluation
/// report in the artifacts bucket; returns its ARN.
fn register_package(aws: &LocalAws, accuracy: f64) -> String {
    aws.boto3(
        REGION,
        &format!(
            r#"
import boto3, json
bucket = "mlops-images-staging-artifacts-{STAGING}"
report = {{"multiclass_classification_metrics": {{"accuracy": {{"value": {accuracy}, "standard_deviation": "NaN"}},
          "top_5_accuracy": {{"value": 0.99, "standard_deviation": "NaN"}}}}}}
boto3.client("s3").put_object(Bucket=bucket, Key="trees/run-1/evaluation/evaluation.json", Body=json.dumps(report))
arn = boto3.client("sagemaker").create_model_package(
    ModelPackageGroupName="{GROUP}",
    ModelApprovalStatus="PendingManualApproval",
    InferenceSpecification={{
        "Containers": [{{"Image": "685385470294.dkr.ecr.eu-west-1.amazonaws.com/image-classification:1",
                         "ModelDataUrl": "s3://" + bucket + "/trees/run-1/model/model.tar.gz"}}],
        "SupportedContentTypes": ["application/x-image", "image/jpeg", "image/png"],
        "SupportedResponseMIMETypes": ["application/json"]}},
    ModelMetrics={{"ModelQuality": {{"Statistics": {{"ContentType": "application/json",
        "S3Uri": "s3://" + bucket + "/trees/run-1/evaluation/evaluation.json"}}}}}},
)["ModelPackageArn"]
print(arn)
"#
        ),
    )
    .trim()
    .to_string()
}

/// Queues the bodies moto's InvokeEndpoint answers with, in request order (one per sample).
fn queue_answers(aws: &LocalAws, bodies: &[String]) {
    aws.queue_endpoint_answers(STAGING, REGION, bodies);
}

/// A probability per class of `trees` (40 classes), summing to 1.
fn probabilities(classes: usize) -> String {
    let mut values = vec![0.0; classes];
    values[3] = 1.0;
    serde_json::to_string(&values).expect("json")
}

/// `scripts/ci-build model-deploy` as the approval rule's build runs it.
fn model_deploy(project: &Path, environment: &[(&str, &str)], package: &str) -> Run {
    let output = std::process::Command::new(common::repo().join("scripts/ci-build"))
        .arg("model-deploy")
        .envs(environment.iter().copied())
        .env("MLOPS_ENVIRONMENT", "staging")
        .env("MODEL_PACKAGE_GROUP", GROUP)
        .env("MODEL_PACKAGE_ARN", package)
        .env("MLOPS_INFRA", env!("CARGO_BIN_EXE_mlops-infra"))
        .env("MLOPS_PROJECT_DIR", project)
        .output()
        .expect("scripts/ci-build runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn ok(run: &Run, what: &str) {
    assert_eq!(
        run.code, 0,
        "{what}:\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
}

#[test]
fn an_approved_package_goes_through_staging_to_prod() {
    let aws = LocalAws::start(STAGING);
    let project = project_copy();
    let dir = project.path();
    let (config, credentials) = profiles(dir);
    edit(
        dir,
        "environments/prod.yaml",
        "protected: true\n",
        "protected: true\nprofile: prod\n",
    );
    let environment = [
        ("AWS_ENDPOINT_URL", aws.url.as_str()),
        ("AWS_CONFIG_FILE", config.as_str()),
        ("AWS_SHARED_CREDENTIALS_FILE", credentials.as_str()),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let run = |args: &[&str]| run_with(dir, args, &environment);

    ok(&run(&["apply", "staging", "--yes"]), "apply staging");
    let empty = run(&["models", "staging", "--model", "trees"]);
    ok(&empty, "models before any run");
    assert!(empty.stdout.contains("no packages yet"), "{}", empty.stdout);

    // The pipeline registers a package, pending manual approval.
    let arn = register_package(&aws, 0.912);
    assert!(arn.ends_with("/mlops-images-staging-trees/1"), "{arn}");
    let pending = run(&["models", "staging", "--model", "trees"]);
    ok(&pending, "models with a pending package");
    let line = pending
        .stdout
        .lines()
        .find(|line| line.trim_start().starts_with("1 "))
        .unwrap_or_else(|| panic!("no version 1 in:\n{}", pending.stdout));
    assert!(line.contains("PendingManualApproval"), "{line}");
    assert!(line.contains("0.912") && line.contains("0.990"), "{line}");
    let unchanged = run(&["plan", "staging", "--detailed-exitcode"]);
    assert_eq!(
        unchanged.code, 0,
        "a pending package changes nothing:\n{}",
        unchanged.stdout
    );

    // Approved: the plan switches the endpoint to it.
    ok(
        &run(&["approve", "staging", "trees", "--reason", "top-1 0.912"]),
        "approve",
    );
    let switch = run(&["plan", "staging", "--detailed-exitcode"]);
    assert_eq!(switch.code, 2, "{}\n{}", switch.stdout, switch.stderr);
    assert!(
        switch.stdout.contains(&format!(
            "parameter ModelPackageArn: (empty) → {arn} ← latest-approved: version 1"
        )),
        "{}",
        switch.stdout
    );
    assert!(
        switch
            .stdout
            .contains("Stacks: 0 to create, 2 to update, 13 unchanged."),
        "{}",
        switch.stdout
    );
    for resource in ["Model", "EndpointConfig", "Endpoint"] {
        assert!(
            switch
                .stdout
                .lines()
                .any(|line| line.trim_start().starts_with('+')
                    && line.contains(&format!(" {resource} "))),
            "{resource} is not added:\n{}",
            switch.stdout
        );
    }
    // What the approval rule starts: the model-deploy build's steps (buildspec.yml), which
    // apply the switch and acceptance-test the endpoints. Two samples; a wrong-shaped answer
    // fails the test, and so the build.
    queue_answers(&aws, &["[0.5, 0.5]".to_string(), probabilities(40)]);
    let deploy = model_deploy(dir, &environment, &arn);
    assert_eq!(deploy.code, 1, "{}\n{}", deploy.stdout, deploy.stderr);
    assert!(
        deploy.stderr.contains(&format!("==> approved: {arn}")),
        "{}",
        deploy.stderr
    );
    assert!(
        deploy.stdout.contains("trees            FAILED"),
        "{}",
        deploy.stdout
    );
    assert!(
        deploy
            .stdout
            .contains("the answer has 2 probabilities; the model has 40 classes"),
        "{}",
        deploy.stdout
    );
    assert!(
        deploy
            .stdout
            .contains("plants           SKIPPED  serves no model package yet"),
        "{}",
        deploy.stdout
    );
    let serving = run(&["models", "staging", "--model", "trees"]);
    assert!(
        serving
            .stdout
            .lines()
            .any(|line| line.contains("Approved") && line.contains("serving; top-1 0.912")),
        "{}",
        serving.stdout
    );

    // Prod exists (its endpoints serve `promoted`: nothing yet), in its own account.
    ok(&run(&["apply", "prod", "--yes"]), "apply prod");
    let refused = run(&[
        "promote", "trees", "--from", "staging", "--to", "prod", "--yes",
    ]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("trees version 1 failed its tests on `staging`"),
        "{}",
        refused.stderr
    );

    fresh_answers(&aws, dir, 40);
    let passing = run(&["test", "staging", "--model", "trees"]);
    ok(&passing, "test staging");
    assert!(
        passing
            .stdout
            .contains("trees            PASSED   2 sample(s)"),
        "{}",
        passing.stdout
    );

    let promoted = run(&[
        "promote", "trees", "--from", "staging", "--to", "prod", "--yes",
    ]);
    ok(&promoted, "promote");
    assert!(
        promoted
            .stderr
            .contains("promoting trees version 1 from staging to prod"),
        "{}",
        promoted.stderr
    );
    let prod_plan = run(&["plan", "prod", "--detailed-exitcode", "--output", "json"]);
    assert_eq!(
        prod_plan.code, 0,
        "prod plans clean after the promotion:\n{}",
        prod_plan.stdout
    );
    let plan: serde_json::Value = serde_json::from_str(&prod_plan.stdout).expect("json plan");
    assert_eq!(plan["account_id"], "333333333333");
    let endpoint = plan["stacks"]
        .as_array()
        .expect("stacks")
        .iter()
        .find(|stack| stack["id"] == "endpoint-trees")
        .expect("endpoint-trees");
    let parameter = endpoint["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .find(|parameter| parameter["name"] == "ModelPackageArn")
        .expect("ModelPackageArn");
    assert_eq!(parameter["value"], arn.as_str());
    assert_eq!(
        parameter["from_registry"],
        "promoted from staging: version 1"
    );
    // The manual trigger path, the self-deploy build and the deploy check, on staging.
    let started = run(&[
        "pipeline",
        "start",
        "staging",
        "trees",
        "--param",
        "InputDataUri=s3://mlops-images-staging-data-222222222222/raw/trees/2026-11/",
    ]);
    ok(&started, "pipeline start");
    let execution = started.stdout.trim();
    assert!(
        execution.starts_with("arn:aws:sagemaker:eu-west-1:222222222222:pipeline/mlops-images-staging-trees/execution/"),
        "{execution}"
    );
    let status = run(&["pipeline", "status", "staging", "trees"]);
    ok(&status, "pipeline status");
    let id = execution.rsplit('/').next().expect("execution id");
    assert!(
        status
            .stdout
            .lines()
            .any(|line| line.trim_start().starts_with(id)),
        "{}",
        status.stdout
    );
    let build = run(&["ci", "run", "staging"]);
    ok(&build, "ci run");
    assert!(
        build
            .stderr
            .contains("started build mlops-images-staging-infrastructure:"),
        "{}",
        build.stderr
    );
    assert!(build.stderr.contains("phase BUILD"), "{}", build.stderr);
    assert!(build.stderr.contains(": SUCCEEDED"), "{}", build.stderr);
    let doctor = run(&["doctor", "staging"]);
    ok(&doctor, "doctor");
    assert!(
        doctor
            .stdout
            .contains("ok       role mlops-images-staging-cloudformation exists"),
        "{}",
        doctor.stdout
    );
    // moto has no policy simulator: reported, not hidden.
    assert!(
        doctor
            .stdout
            .contains("warning  cannot simulate the deploy permissions"),
        "{}",
        doctor.stdout
    );

    let prod_endpoint = aws.boto3(
        REGION,
        r#"
import boto3
sts = boto3.client("sts")
c = sts.assume_role(RoleArn="arn:aws:iam::333333333333:role/check", RoleSessionName="check")["Credentials"]
sm = boto3.client("sagemaker", aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"])
print(sm.describe_endpoint(EndpointName="mlops-images-prod-trees")["EndpointArn"])
"#,
    );
    assert!(
        prod_endpoint
            .contains("arn:aws:sagemaker:eu-west-1:333333333333:endpoint/mlops-images-prod-trees"),
        "{prod_endpoint}"
    );
}

/// moto remembers its answer to each (endpoint, request body): new sample bytes (a trailing
/// comment after the JPEG's end) get fresh answers from the queue.
fn fresh_answers(aws: &LocalAws, project: &Path, classes: usize) {
    for name in ["flower.jpg", "leaf.jpg"] {
        let path = project.join("payloads").join(name);
        let mut bytes = std::fs::read(&path).expect("payload");
        bytes.extend_from_slice(b" again");
        std::fs::write(&path, bytes).expect("payload");
    }
    queue_answers(aws, &[probabilities(classes), probabilities(classes)]);
}
