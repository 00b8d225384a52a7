//! An in-memory `ReviewStore`: objects with ETags that change on every write and conditional
//! writes checked and applied under one lock (atomic, as S3's are), package class names, a
//! caller, and the log lines written. Failures can be injected per key.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use super::review_store::{Condition, Fetched, ReviewStore, WriteError};
use super::{AwsError, AwsResult};

#[derive(Debug, Default)]
struct State {
    objects: BTreeMap<(String, String), (Vec<u8>, u64)>,
    writes: u64,
    classes: BTreeMap<String, String>,
    logs: Vec<(String, String, String)>,
    failing: BTreeSet<String>,
    unreachable: bool,
}

#[derive(Debug, Default)]
pub struct FakeReviewStore {
    state: Mutex<State>,
    caller: String,
}

impl FakeReviewStore {
    pub fn new(caller: &str) -> Self {
        FakeReviewStore {
            state: Mutex::default(),
            caller: caller.to_string(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn insert(&self, bucket: &str, key: &str, body: &[u8]) {
        let mut state = self.state();
        state.writes += 1;
        let version = state.writes;
        state
            .objects
            .insert((bucket.into(), key.into()), (body.to_vec(), version));
    }

    pub fn body(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        self.state()
            .objects
            .get(&(bucket.to_string(), key.to_string()))
            .map(|(body, _)| body.clone())
    }

    /// Every key of the bucket, in order.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        self.state()
            .objects
            .keys()
            .filter(|(b, _)| b == bucket)
            .map(|(_, key)| key.clone())
            .collect()
    }

    /// The package's classes.json is at `uri`.
    pub fn set_classes(&self, package: &str, uri: &str) {
        self.state().classes.insert(package.into(), uri.into());
    }

    /// Writes, copies and deletes of `key` fail (as S3 denying them would).
    pub fn fail_writes_of(&self, key: &str) {
        self.state().failing.insert(key.into());
    }

    /// Writes of `key` work again.
    pub fn allow_writes_of(&self, key: &str) {
        self.state().failing.remove(key);
    }

    /// Every call fails as an unreachable endpoint does.
    pub fn set_unreachable(&self, unreachable: bool) {
        self.state().unreachable = unreachable;
    }

    /// The log lines written: (group, stream, line).
    pub fn log_lines(&self) -> Vec<(String, String, String)> {
        self.state().logs.clone()
    }

    fn check(&self, state: &State, key: &str) -> AwsResult<()> {
        if state.unreachable {
            return Err(AwsError::Unreachable("connection refused".into()));
        }
        if state.failing.contains(key) {
            return Err(AwsError::AccessDenied(format!("writing {key} is denied")));
        }
        Ok(())
    }
}

fn etag(version: u64) -> String {
    format!("\"{version:032x}\"")
}

impl ReviewStore for FakeReviewStore {
    async fn list(&self, bucket: &str, prefix: &str, limit: usize) -> AwsResult<Vec<String>> {
        let state = self.state();
        self.check(&state, "")?;
        Ok(state
            .objects
            .keys()
            .filter(|(b, key)| b == bucket && key.starts_with(prefix))
            .map(|(_, key)| key.clone())
            .take(limit)
            .collect())
    }

    async fn get(&self, bucket: &str, key: &str) -> AwsResult<Option<Fetched>> {
        let state = self.state();
        self.check(&state, "")?;
        Ok(state
            .objects
            .get(&(bucket.to_string(), key.to_string()))
            .map(|(body, version)| Fetched {
                body: body.clone(),
                etag: etag(*version),
            }))
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        _content_type: &str,
        condition: Option<Condition>,
    ) -> Result<(), WriteError> {
        let mut state = self.state();
        self.check(&state, key)?;
        let id = (bucket.to_string(), key.to_string());
        let current = state.objects.get(&id).map(|(_, version)| etag(*version));
        let holds = match &condition {
            None => true,
            Some(Condition::IfAbsent) => current.is_none(),
            Some(Condition::IfMatch(expected)) => current.as_deref() == Some(expected.as_str()),
        };
        if !holds {
            return Err(WriteError::Conflict);
        }
        state.writes += 1;
        let version = state.writes;
        state.objects.insert(id, (body, version));
        Ok(())
    }

    async fn copy(&self, bucket: &str, from: &str, to: &str) -> AwsResult<()> {
        let mut state = self.state();
        self.check(&state, to)?;
        let Some((body, _)) = state
            .objects
            .get(&(bucket.to_string(), from.to_string()))
            .cloned()
        else {
            return Err(AwsError::NotFound);
        };
        state.writes += 1;
        let version = state.writes;
        state
            .objects
            .insert((bucket.to_string(), to.to_string()), (body, version));
        Ok(())
    }

    async fn delete(&self, bucket: &str, key: &str) -> AwsResult<()> {
        let mut state = self.state();
        self.check(&state, key)?;
        state.objects.remove(&(bucket.to_string(), key.to_string()));
        Ok(())
    }

    async fn classes_uri(&self, package: &str) -> AwsResult<Option<String>> {
        let state = self.state();
        self.check(&state, "")?;
        Ok(state.classes.get(package).cloned())
    }

    async fn caller(&self) -> AwsResult<String> {
        Ok(self.caller.clone())
    }

    async fn log(
        &self,
        group: &str,
        stream: &str,
        _timestamp_millis: i64,
        line: String,
    ) -> AwsResult<()> {
        let mut state = self.state();
        self.check(&state, "")?;
        state.logs.push((group.into(), stream.into(), line));
        Ok(())
    }
}
