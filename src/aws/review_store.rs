//! The narrow AWS boundary of `review`: objects in the data bucket (with S3's conditional
//! writes, which keep two reviewers off one photo), a model package's class names, who the
//! caller is, and the review log whose lines CloudWatch turns into the review dashboard's
//! counts. Speaks the tool's own types; the SDK adapter is `sdk_review.rs`, the in-memory fake
//! `fake_review.rs`.

use std::future::Future;

use super::{AwsError, AwsResult};

/// An object's bytes and the version they are (its ETag, for a conditional write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub body: Vec<u8>,
    pub etag: String,
}

/// When a write may happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Only if no object has the key (`If-None-Match: *`).
    IfAbsent,
    /// Only if the object is still this version (`If-Match: <etag>`).
    IfMatch(String),
}

/// A write refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The condition did not hold: someone else wrote first (S3's 412, or 409 for two
    /// conditional writes at once).
    #[error("another writer got there first")]
    Conflict,
    #[error(transparent)]
    Aws(#[from] AwsError),
}

pub trait ReviewStore: Send + Sync {
    /// Keys under `prefix`, in S3's order (ascending), at most `limit`.
    fn list(
        &self,
        bucket: &str,
        prefix: &str,
        limit: usize,
    ) -> impl Future<Output = AwsResult<Vec<String>>> + Send;
    fn get(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = AwsResult<Option<Fetched>>> + Send;
    /// Writes under the bucket's default encryption; `condition` None writes whatever is there.
    fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        condition: Option<Condition>,
    ) -> impl Future<Output = Result<(), WriteError>> + Send;
    /// Copies within the bucket (server-side), under the bucket's default encryption.
    fn copy(
        &self,
        bucket: &str,
        from: &str,
        to: &str,
    ) -> impl Future<Output = AwsResult<()>> + Send;
    fn delete(&self, bucket: &str, key: &str) -> impl Future<Output = AwsResult<()>> + Send;
    /// The `s3://` URI of a model package's classes.json (its `classes` customer metadata);
    /// None when the package has none.
    fn classes_uri(&self, package: &str) -> impl Future<Output = AwsResult<Option<String>>> + Send;
    /// The caller's ARN.
    fn caller(&self) -> impl Future<Output = AwsResult<String>> + Send;
    /// One line into the review log (`group`, `stream`; the stream is created when missing).
    fn log(
        &self,
        group: &str,
        stream: &str,
        timestamp_millis: i64,
        line: String,
    ) -> impl Future<Output = AwsResult<()>> + Send;
}

/// `s3://bucket/key` → (bucket, key).
pub fn split_uri(uri: &str) -> Option<(&str, &str)> {
    let (bucket, key) = uri.strip_prefix("s3://")?.split_once('/')?;
    (!bucket.is_empty() && !key.is_empty()).then_some((bucket, key))
}
