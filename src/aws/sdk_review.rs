//! `ReviewStore` through aws-sdk-rust, on the release flow's clients (the reviewer's own
//! credentials): S3 with conditional writes, SageMaker for a package's class names, STS for
//! the caller, CloudWatch Logs for the review log. Writes and copies name no encryption: the
//! bucket's default (its own KMS key) applies, where `aws:kms` without a key id would use the
//! account's `aws/s3` key instead (S3 API reference, PutObject `SSEKMSKeyId`).

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::review_store::{Condition, Fetched, ReviewStore, WriteError};
use super::sdk::classify;
use super::sdk_platform::SdkPlatform;
use super::{AwsError, AwsResult};

impl ReviewStore for SdkPlatform {
    async fn list(&self, bucket: &str, prefix: &str, limit: usize) -> AwsResult<Vec<String>> {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .s3
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(classify)?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|object| object.key().map(str::to_string)),
            );
            token = page.next_continuation_token().map(str::to_string);
            if token.is_none() || keys.len() >= limit {
                keys.truncate(limit);
                return Ok(keys);
            }
        }
    }

    async fn get(&self, bucket: &str, key: &str) -> AwsResult<Option<Fetched>> {
        let object = match self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(classify)
        {
            Ok(object) => object,
            Err(AwsError::NotFound) => return Ok(None),
            Err(error) => return Err(error),
        };
        let etag = object.e_tag().unwrap_or_default().to_string();
        let body = object
            .body
            .collect()
            .await
            .map_err(|error| AwsError::Transport(format!("reading s3://{bucket}/{key}: {error}")))?
            .into_bytes()
            .to_vec();
        Ok(Some(Fetched { body, etag }))
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        condition: Option<Condition>,
    ) -> Result<(), WriteError> {
        let mut request = self
            .s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(body.into());
        request = match condition {
            Some(Condition::IfAbsent) => request.if_none_match("*"),
            Some(Condition::IfMatch(etag)) => request.if_match(etag),
            None => request,
        };
        match request.send().await {
            Ok(_) => Ok(()),
            Err(error) if is_conflict(&error) => Err(WriteError::Conflict),
            Err(error) => Err(WriteError::Aws(classify(error))),
        }
    }

    async fn copy(&self, bucket: &str, from: &str, to: &str) -> AwsResult<()> {
        self.s3
            .copy_object()
            .bucket(bucket)
            .key(to)
            .copy_source(format!("{bucket}/{}", encode_key(from)))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn delete(&self, bucket: &str, key: &str) -> AwsResult<()> {
        self.s3
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn classes_uri(&self, package: &str) -> AwsResult<Option<String>> {
        let described = self
            .sagemaker
            .describe_model_package()
            .model_package_name(package)
            .send()
            .await
            .map_err(classify)?;
        Ok(super::sdk_platform::classes_uri(
            described.customer_metadata_properties(),
        ))
    }

    async fn caller(&self) -> AwsResult<String> {
        let identity = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(classify)?;
        Ok(identity.arn().unwrap_or_default().to_string())
    }

    async fn log(
        &self,
        group: &str,
        stream: &str,
        timestamp_millis: i64,
        line: String,
    ) -> AwsResult<()> {
        let event = aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
            .timestamp(timestamp_millis)
            .message(line)
            .build()
            .map_err(|error| AwsError::Other(error.to_string()))?;
        let put = || {
            self.logs
                .put_log_events()
                .log_group_name(group)
                .log_stream_name(stream)
                .log_events(event.clone())
                .send()
        };
        match put().await.map_err(classify) {
            Err(AwsError::NotFound) => {
                self.logs
                    .create_log_stream()
                    .log_group_name(group)
                    .log_stream_name(stream)
                    .send()
                    .await
                    .map_err(classify)?;
                put().await.map_err(classify)?;
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }
}

/// S3's answer to a conditional write whose condition failed (412 PreconditionFailed), or to
/// two conditional writes of one key at once (409 ConditionalRequestConflict).
fn is_conflict<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    matches!(
        error.code(),
        Some("PreconditionFailed" | "ConditionalRequestConflict")
    )
}

/// A key as CopyObject's `x-amz-copy-source` takes it: URL-encoded, `/` kept.
fn encode_key(key: &str) -> String {
    let mut out = String::new();
    for byte in key.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(byte as char)
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_sources_are_url_encoded_but_keep_slashes() {
        assert_eq!(
            encode_key("raw/trees/white oak/ä.jpg"),
            "raw/trees/white%20oak/%C3%A4.jpg"
        );
    }
}
