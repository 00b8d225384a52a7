//! The record of deployed templates: one JSON object per environment in its artifacts bucket,
//! saying for each stack which template it held when it was last seen in a given state (its
//! fingerprint: id, status and `LastUpdatedTime`). `plan` reads it once and skips `GetTemplate`
//! for every stack whose state is the recorded one and whose rendered template hashes as the
//! recorded one: that template is what is deployed. Anything else (no record, another state,
//! another template) reads the template as before, so the record only ever saves calls.
//!
//! A stack's fingerprint changes with every operation on it (CloudFormation sets
//! `LastUpdatedTime` when an update or rollback starts), including updates made outside the
//! tool, so an entry for an earlier state is never taken for the current one. `apply` writes the
//! record: the state each applied stack settled in with the template it sent, and what the plan
//! read for the stacks it left alone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::aws::DeployedStack;

/// Bumped when the record changes shape; a record of another version is ignored.
const VERSION: u32 = 1;

/// Where an environment's record lives in its artifacts bucket (next to the templates apply
/// uploads under `cloudformation/<stack>/`; stack names are `<prefix>-<id>`, so no stack's
/// folder is this one).
pub fn key(prefix: &str) -> String {
    format!("cloudformation/{prefix}/deployed-templates.json")
}

/// The SHA-256 of a template body, as hex.
pub fn digest(body: &str) -> String {
    let hash = Sha256::digest(body.as_bytes());
    hash.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    version: u32,
    /// By stack name.
    stacks: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    /// `DeployedStack::fingerprint` when the template below was the stack's.
    fingerprint: String,
    /// `digest` of that template.
    sha256: String,
}

impl Default for Record {
    fn default() -> Self {
        Record::new()
    }
}

impl Record {
    pub fn new() -> Self {
        Record {
            version: VERSION,
            stacks: BTreeMap::new(),
        }
    }

    /// The record in `bytes`; an empty one when they are not a record of this version (a
    /// damaged or foreign object costs the calls it would have saved, nothing else).
    pub fn parse(bytes: &[u8]) -> Self {
        serde_json::from_slice::<Record>(bytes)
            .ok()
            .filter(|record| record.version == VERSION)
            .unwrap_or_default()
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut json = serde_json::to_vec_pretty(self).unwrap_or_default();
        json.push(b'\n');
        json
    }

    pub fn len(&self) -> usize {
        self.stacks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stacks.is_empty()
    }

    /// Whether `body` is the template recorded for `stack`, in whatever state: the stack's
    /// state alone (`DescribeStacks`) may then be enough.
    pub fn may_hold(&self, stack: &str, body: &str) -> bool {
        self.stacks
            .get(stack)
            .is_some_and(|entry| entry.sha256 == digest(body))
    }

    /// Whether `body` is the template `stack` holds in the state `DescribeStacks` reported.
    pub fn holds(&self, stack: &DeployedStack, body: &str) -> bool {
        self.stacks.get(&stack.name).is_some_and(|entry| {
            entry.fingerprint == stack.fingerprint() && entry.sha256 == digest(body)
        })
    }

    /// Records that `stack`, in the state it was described in, holds `body`. The state must
    /// have been read no later than the template: a template read first could be an earlier
    /// one than the state's.
    pub fn note(&mut self, stack: &DeployedStack, body: &str) {
        self.note_fingerprint(&stack.name, stack.fingerprint(), body);
    }

    /// As `note`, from a fingerprint read elsewhere (a stack apply watched settle).
    pub fn note_fingerprint(&mut self, stack: &str, fingerprint: String, body: &str) {
        self.stacks.insert(
            stack.to_string(),
            Entry {
                fingerprint,
                sha256: digest(body),
            },
        );
    }

    pub fn forget(&mut self, stack: &str) {
        self.stacks.remove(stack);
    }

    /// Keeps what `other` recorded and this one does not.
    pub fn fill_from(&mut self, other: &Record) {
        for (name, entry) in &other.stacks {
            self.stacks
                .entry(name.clone())
                .or_insert_with(|| entry.clone());
        }
    }

    /// Drops the stacks `keep` says no to (stacks the environment no longer has).
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.stacks.retain(|name, _| keep(name));
    }
}

/// The record after applying `plan`: `before` (what the plan read, or the stored record) with
/// each stack that applied holding the template apply sent, in the state it settled in. Stacks
/// resources moved into, and the retired stacks they moved out of, are left out: a stack
/// refactor changes their templates. Stacks the environment no longer has are dropped.
pub fn after_apply(
    before: &Record,
    environment: &crate::config::Environment,
    plan: &crate::plan::Plan,
    report: &crate::apply::ApplyReport,
) -> Record {
    let mut record = before.clone();
    for stack in &plan.stacks {
        if let Some(fingerprint) = report.settled.get(&stack.name) {
            record.note_fingerprint(&stack.name, fingerprint.clone(), &stack.template_body);
        } else if stack
            .resources
            .iter()
            .any(|resource| resource.moved_from.is_some())
        {
            record.forget(&stack.name);
        }
    }
    for retired in &plan.retired {
        record.forget(&retired.name);
    }
    let names: std::collections::BTreeSet<String> = crate::stacks::stacks(environment)
        .into_iter()
        .map(|spec| spec.name)
        .collect();
    record.retain(|name| names.contains(name));
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::StackStatus;

    fn stack(status: &str, updated: Option<&str>) -> DeployedStack {
        DeployedStack {
            name: "app-storage".into(),
            id: "arn:aws:cloudformation:us-east-1:123456789012:stack/app-storage/1".into(),
            status: StackStatus::new(status),
            status_reason: None,
            parameters: BTreeMap::new(),
            tags: BTreeMap::new(),
            outputs: BTreeMap::new(),
            termination_protection: false,
            last_updated: updated.map(str::to_string),
            role_arn: None,
            template_body: String::new(),
            last_operation_id: None,
            detailed_status: None,
        }
    }

    #[test]
    fn a_template_is_held_only_in_the_state_it_was_recorded_in() {
        let mut record = Record::new();
        let settled = stack("UPDATE_COMPLETE", Some("2026-12-01T10:00:00Z"));
        record.note(&settled, "Resources: {}\n");
        assert!(record.holds(&settled, "Resources: {}\n"));
        assert!(record.may_hold("app-storage", "Resources: {}\n"));
        // Another template, or the same stack after another update or a rollback.
        assert!(!record.holds(&settled, "Resources: {A: 1}\n"));
        assert!(!record.may_hold("app-storage", "Resources: {A: 1}\n"));
        assert!(!record.holds(
            &stack("UPDATE_COMPLETE", Some("2026-12-01T11:00:00Z")),
            "Resources: {}\n"
        ));
        assert!(!record.holds(
            &stack("UPDATE_ROLLBACK_COMPLETE", Some("2026-12-01T10:00:00Z")),
            "Resources: {}\n"
        ));
        // A stack of another id under the same name (deleted and created again).
        let mut again = settled.clone();
        again.id = again.id.replace("/1", "/2");
        assert!(!record.holds(&again, "Resources: {}\n"));
        record.forget("app-storage");
        assert!(!record.holds(&settled, "Resources: {}\n"));
    }

    #[test]
    fn a_record_reads_back_and_anything_else_reads_as_empty() {
        let mut record = Record::new();
        record.note(&stack("CREATE_COMPLETE", None), "a");
        assert_eq!(Record::parse(&record.to_json()), record);
        assert_eq!(record.len(), 1);
        for bytes in [
            &b""[..],
            b"not json",
            b"{\"version\": 2, \"stacks\": {}}",
            b"{\"stacks\": {}}",
            b"[]",
        ] {
            let read = Record::parse(bytes);
            assert!(read.is_empty(), "{}", String::from_utf8_lossy(bytes));
            assert_eq!(read.version, VERSION);
        }
    }

    #[test]
    fn the_digest_is_sha256() {
        // FIPS 180-2 test vector.
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn filling_keeps_newer_entries_and_retain_drops_other_stacks() {
        let mut newer = Record::new();
        newer.note_fingerprint("app-a", "a|UPDATE_COMPLETE|2".into(), "new");
        let mut older = Record::new();
        older.note_fingerprint("app-a", "a|UPDATE_COMPLETE|1".into(), "old");
        older.note_fingerprint("app-b", "b|CREATE_COMPLETE|-".into(), "b");
        newer.fill_from(&older);
        assert_eq!(newer.stacks["app-a"].fingerprint, "a|UPDATE_COMPLETE|2");
        assert_eq!(newer.stacks["app-b"].sha256, digest("b"));
        newer.retain(|name| name != "app-b");
        assert_eq!(newer.len(), 1);
    }
}
