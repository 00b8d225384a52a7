//! A SigV4-signed HTTPS request to an API the platform deploys (the router's `POST /identify`,
//! service `execute-api`), as an app would send it: credentials from the same standard chain as
//! the SDK clients, signing by aws-sigv4, sending by hyper with rustls.

use std::time::SystemTime;

use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::{AwsError, AwsResult};

/// Signs and sends `POST url` with `body`; returns the status and the body of the answer.
pub async fn post(
    config: &SdkConfig,
    service: &str,
    url: &str,
    content_type: &str,
    body: &[u8],
) -> AwsResult<(u16, Vec<u8>)> {
    let provider = config
        .credentials_provider()
        .ok_or(AwsError::NoCredentials)?;
    let credentials = provider
        .provide_credentials()
        .await
        .map_err(|_| AwsError::NoCredentials)?;
    let region = config
        .region()
        .map(|region| region.as_ref().to_string())
        .ok_or_else(|| AwsError::Other("no AWS region configured".into()))?;
    let identity = credentials.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|error| AwsError::Other(format!("cannot sign the request: {error}")))?
        .into();
    let headers = [("content-type", content_type)];
    let signable = SignableRequest::new(
        "POST",
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|error| AwsError::Validation(format!("{url}: {error}")))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|error| AwsError::Other(format!("cannot sign the request: {error}")))?
        .into_parts();
    let mut request = http::Request::builder()
        .method("POST")
        .uri(url)
        .header("content-type", content_type)
        .body(Full::new(bytes::Bytes::copy_from_slice(body)))
        .map_err(|error| AwsError::Validation(format!("{url}: {error}")))?;
    instructions.apply_to_request_http1x(&mut request);

    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
        .map_err(|error| AwsError::Other(format!("no TLS trust roots: {error}")))?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Full<bytes::Bytes>> =
        Client::builder(TokioExecutor::new()).build(connector);
    let response = client.request(request).await.map_err(|error| {
        if error.is_connect() {
            AwsError::Unreachable(format!("{url}: {error}"))
        } else {
            AwsError::Transport(format!("{url}: {error}"))
        }
    })?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|error| AwsError::Transport(format!("{url}: {error}")))?
        .to_bytes()
        .to_vec();
    Ok((status, body))
}
