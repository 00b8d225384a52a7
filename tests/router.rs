//! One call from photo to species on the local AWS, with IAM enforced: staging applied with
//! approved `plants` and `trees` packages (their classes.json registered as the pipeline's
//! Register step does), then the router function invoked with the event API Gateway sends for
//! `POST /identify`. The function runs as its own role, reads each package's classes and calls
//! the parent's endpoint, then the child's.
//!
//! What the emulator cannot do: it runs no model (the endpoints' answers are queued through
//! moto's `/moto-api/static/sagemaker/endpoint-results`, in request order), and it cannot route
//! an `execute-api` request to the function (docs/local-aws.md), so the function is invoked
//! directly with the proxy event.

mod common;

use common::{LocalAws, project_copy, run_with};

const STAGING: &str = "222222222222";
const REGION: &str = "eu-west-1";
const BUCKET: &str = "mlops-images-staging-artifacts-222222222222";
const PARENT_CLASSES: [&str; 3] = ["flowers", "grasses", "trees"];

/// Registers an approved package in `model`'s group with `classes` as its classes.json, as the
/// pipeline's Register step records it; returns its ARN.
fn approved_package(aws: &LocalAws, model: &str, classes: &[String]) -> String {
    let classes = serde_json::to_string(classes).expect("json");
    aws.boto3(
        REGION,
        &format!(
            r#"
import boto3
bucket = "{BUCKET}"
key = "mlops-images-staging-{model}/run-1/datasets/index/classes.json"
boto3.client("s3").put_object(Bucket=bucket, Key=key, Body={classes:?})
sagemaker = boto3.client("sagemaker")
arn = sagemaker.create_model_package(
    ModelPackageGroupName="mlops-images-staging-{model}",
    ModelApprovalStatus="PendingManualApproval",
    InferenceSpecification={{
        "Containers": [{{"Image": "685385470294.dkr.ecr.eu-west-1.amazonaws.com/image-classification:1",
                         "ModelDataUrl": "s3://" + bucket + "/mlops-images-staging-{model}/run-1/model/model.tar.gz"}}],
        "SupportedContentTypes": ["application/x-image"],
        "SupportedResponseMIMETypes": ["application/json"]}},
    CustomerMetadataProperties={{"classes": "s3://" + bucket + "/" + key}},
)["ModelPackageArn"]
sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
print(arn)
"#
        ),
    )
    .trim()
    .to_string()
}

/// Queues the endpoints' answers, in the order the calls will come.
fn queue_answers(aws: &LocalAws, answers: &[Vec<f64>]) {
    let bodies: Vec<String> = answers
        .iter()
        .map(|answer| serde_json::to_string(answer).expect("json"))
        .collect();
    aws.queue_endpoint_answers(STAGING, REGION, &bodies);
}

/// Invokes the router with the proxy event of `POST /identify` carrying `payloads/<photo>`;
/// returns the function's answer (`statusCode`, `body` parsed).
fn identify(aws: &LocalAws, photo: &str) -> (u64, serde_json::Value) {
    let photo = common::repo().join("payloads").join(photo);
    let answer = aws.boto3(
        REGION,
        &format!(
            r#"
import base64, boto3, json
image = open({photo:?}, "rb").read()
event = {{"resource": "/identify", "path": "/identify", "httpMethod": "POST",
          "headers": {{"Content-Type": "image/jpeg"}}, "requestContext": {{"requestId": "request-1"}},
          "body": base64.b64encode(image).decode(), "isBase64Encoded": True}}
response = boto3.client("lambda").invoke(FunctionName="mlops-images-staging-router-plants",
                                         Payload=json.dumps(event).encode())
print(response["Payload"].read().decode())
"#,
            photo = photo.to_string_lossy()
        ),
    );
    let result: serde_json::Value = serde_json::from_str(answer.trim()).expect("the answer");
    let status = result["statusCode"]
        .as_u64()
        .unwrap_or_else(|| panic!("{result}"));
    let body = serde_json::from_str(result["body"].as_str().expect("a body")).expect("JSON body");
    (status, body)
}

#[test]
fn a_photo_goes_through_parent_and_child_to_a_species() {
    let aws = LocalAws::start_enforcing_iam(STAGING);
    let environment = aws.environment(REGION);
    let project = project_copy();
    let species: Vec<String> = (0..40).map(|index| format!("tree-{index:02}")).collect();
    let parent_classes: Vec<String> = PARENT_CLASSES.iter().map(|c| c.to_string()).collect();
    // Packages need their groups and bucket: apply those stacks first, then register.
    let storage = run_with(
        project.path(),
        &[
            "apply",
            "staging",
            "--yes",
            "--stack",
            "storage",
            "--stack",
            "iam",
            "--stack",
            "pipeline-plants",
            "--stack",
            "pipeline-trees",
        ],
        &environment,
    );
    assert_eq!(storage.code, 0, "{}", storage.stderr);
    let plants = approved_package(&aws, "plants", &parent_classes);
    let trees = approved_package(&aws, "trees", &species);

    let applied = run_with(project.path(), &["apply", "staging", "--yes"], &environment);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stderr, aws.log());

    // The parent says trees (index 2), the trees model says species 7.
    let mut parent = vec![0.05, 0.05, 0.9];
    let mut child = vec![0.0; 40];
    child[7] = 0.8;
    child[3] = 0.2;
    queue_answers(&aws, &[parent.clone(), child]);
    let (status, body) = identify(&aws, "leaf.jpg");
    assert_eq!(status, 200, "{body}\n{}", aws.log());
    assert_eq!(body["subgroup"]["name"], "trees", "{body}");
    assert_eq!(body["subgroup"]["model"], "plants", "{body}");
    assert_eq!(
        body["subgroup"]["package_version"],
        plants.rsplit('/').next().expect("version"),
        "{body}"
    );
    assert_eq!(body["species"]["name"], "tree-07", "{body}");
    assert_eq!(body["species"]["confidence"], 0.8, "{body}");
    assert_eq!(body["species"]["top5"][1]["name"], "tree-03", "{body}");
    assert_eq!(
        body["species"]["package_version"],
        trees.rsplit('/').next().expect("version"),
        "{body}"
    );
    assert_eq!(body["low_confidence"], false, "{body}");

    // A sub-group whose model has no approved package yet: a clear 503, not a crash.
    parent.swap(0, 2);
    queue_answers(&aws, &[parent]);
    let (status, body) = identify(&aws, "flower.jpg");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "no_endpoint", "{body}");
}
