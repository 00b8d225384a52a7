//! `identify`: a photo to the router's URL (read from the deployed router stack), signed as an
//! app signs it. In memory for what the command prints and refuses; and the SDK adapter's
//! signed request as a server receives it (the local AWS cannot route an `execute-api`
//! request, docs/local-aws.md).

mod common;

use common::capture::capture;
use common::{repo, seen};
use mlops_infra::aws::CloudFormation;
use mlops_infra::aws::fake::FakeCloudFormation;
use mlops_infra::aws::fake_platform::FakePlatform;
use mlops_infra::aws::platform::Platform;
use mlops_infra::cli::{IdentifyArgs, OutputFormat};
use mlops_infra::commands::{deploy, identify};
use mlops_infra::error::ExitStatus;

const ANSWER: &str = r#"{"subgroup": {"name": "trees", "confidence": 0.91, "model": "plants", "package_version": "3",
  "top5": [{"name": "trees", "confidence": 0.91}, {"name": "flowers", "confidence": 0.06}, {"name": "grasses", "confidence": 0.03}]},
 "species": {"name": "oak", "confidence": 0.55, "model": "trees", "package_version": "1",
  "top5": [{"name": "oak", "confidence": 0.55}, {"name": "beech", "confidence": 0.3}]},
 "low_confidence": true, "request_id": "r"}"#;

/// Staging applied in memory; returns the router's URL.
async fn deployed(fake: &FakeCloudFormation, platform: &FakePlatform) -> String {
    let args = common::apply_args("staging");
    let applied = capture("apply", async |output, context| {
        deploy::apply(fake, platform, &repo(), &args, output, context).await
    })
    .await;
    assert_eq!(applied.status, ExitStatus::Success, "{}", applied.stderr);
    fake.describe_stack("mlops-images-staging-router-plants")
        .await
        .expect("described")
        .expect("deployed")
        .outputs["IdentifyUrl"]
        .clone()
}

fn args(image: &str) -> IdentifyArgs {
    IdentifyArgs {
        environment: "staging".into(),
        image: repo().join(image),
        parent: None,
        output: OutputFormat::Text,
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_photo_is_posted_to_the_router_and_the_answer_read_level_by_level() {
    let (fake, platform) = (FakeCloudFormation::new(), FakePlatform::new("222222222222"));
    let url = deployed(&fake, &platform).await;
    platform.set_api(&url, 200, ANSWER);
    let args = args("payloads/leaf.jpg");
    let run = capture("identify", async |output, _| {
        identify::identify(&fake, &platform, &repo(), &args, output).await
    })
    .await;
    assert_eq!(run.status, ExitStatus::Success, "{}", run.stderr);
    insta::assert_snapshot!("identify_text", run.stdout);
    let size = std::fs::metadata(repo().join("payloads/leaf.jpg"))
        .expect("photo")
        .len() as usize;
    assert_eq!(platform.posts(), [(url, "image/jpeg".to_string(), size)]);
}

#[tokio::test(flavor = "current_thread")]
async fn an_error_answer_and_a_file_that_is_no_photo_are_named() {
    let (fake, platform) = (FakeCloudFormation::new(), FakePlatform::new("222222222222"));
    let url = deployed(&fake, &platform).await;
    platform.set_api(
        &url,
        503,
        r#"{"error": "no_endpoint", "message": "Model `flowers` has no deployed endpoint yet; approve a package for it, then apply."}"#,
    );
    let args = args("payloads/leaf.jpg");
    let refused = capture("identify", async |output, _| {
        identify::identify(&fake, &platform, &repo(), &args, output).await
    })
    .await;
    assert_eq!(refused.status, ExitStatus::Failure);
    insta::assert_snapshot!("identify_error_answer", refused.stderr);

    let not_a_photo = IdentifyArgs {
        image: repo().join("environments/staging.yaml"),
        ..args
    };
    let refused = capture("identify", async |output, _| {
        identify::identify(&fake, &platform, &repo(), &not_a_photo, output).await
    })
    .await;
    assert_eq!(refused.status, ExitStatus::Failure);
    insta::assert_snapshot!("identify_not_a_photo", seen(&refused.stderr, &repo()));
}

/// What a server receives from the SDK adapter: a POST signed with SigV4 for execute-api in
/// the environment's region, with the photo as the body.
#[tokio::test(flavor = "current_thread")]
async fn the_request_is_signed_for_execute_api_with_the_usual_credentials() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listens");
    let url = format!(
        "http://{}/v1/identify",
        listener.local_addr().expect("address")
    );
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("a request");
        let mut received = Vec::new();
        let mut buffer = [0_u8; 4096];
        // Headers, then the body of the announced length.
        loop {
            let read = socket.read(&mut buffer).await.expect("reads");
            received.extend_from_slice(&buffer[..read]);
            let text = String::from_utf8_lossy(&received).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length: usize = head
                    .lines()
                    .find_map(|line| {
                        line.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(str::to_string)
                    })
                    .and_then(|value| value.trim().parse().ok())
                    .unwrap_or(0);
                if body.len() >= length || read == 0 {
                    break;
                }
            }
        }
        let answer =
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
        socket.write_all(answer.as_bytes()).await.expect("answers");
        received
    });
    let config = aws_config::SdkConfig::builder()
        .region(aws_config::Region::new("eu-west-1"))
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new("AKIDEXAMPLE", "secret", None, None, "test"),
            ),
        )
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let platform = mlops_infra::aws::sdk_platform::SdkPlatform::from_config(&config);
    let (status, body) = platform
        .post_signed(&url, "image/png", b"\x89PNG\r\n\x1a\nphoto")
        .await
        .expect("answered");
    assert_eq!((status, body.as_slice()), (200, b"{}".as_slice()));
    let received = server.await.expect("server");
    let split = received
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("a request");
    let head = String::from_utf8_lossy(&received[..split]).to_string();
    let body = &received[split + 4..];
    assert!(head.starts_with("POST /v1/identify HTTP/1.1\r\n"), "{head}");
    let header = |name: &str| {
        head.lines()
            .find_map(|line| {
                let (key, value) = line.split_once(": ")?;
                key.eq_ignore_ascii_case(name).then(|| value.to_string())
            })
            .unwrap_or_else(|| panic!("no {name} in {head}"))
    };
    let authorization = header("authorization");
    let date = header("x-amz-date");
    assert!(
        authorization.starts_with(&format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{}/eu-west-1/execute-api/aws4_request, SignedHeaders=",
            &date[..8]
        )),
        "{authorization}"
    );
    assert!(
        authorization.contains("content-type;host;x-amz-date"),
        "{authorization}"
    );
    assert_eq!(header("content-type"), "image/png");
    assert_eq!(body, b"\x89PNG\r\n\x1a\nphoto");
}
