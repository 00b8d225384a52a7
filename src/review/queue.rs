//! The review queue of one parent model: claiming the oldest photo nobody holds (a
//! conditional write, so two reviewers never get the same one), and carrying out a decision
//! without losing anything: the photo is copied into the raw data under its label, an audit
//! record is written, and only then is the item taken out of the queue.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::record::{Keys, Record, extension, is_folder_name};
use crate::aws::AwsError;
use crate::aws::review_store::{Condition, ReviewStore, WriteError, split_uri};

/// At most this many pending items are looked at for the next one.
const LIST_LIMIT: usize = 2000;

/// Where the queue lives and what a decision writes.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bucket: String,
    pub parent: String,
    /// `raw/`: decisions copy photos to `<raw_prefix><model>/<label>/`.
    pub raw_prefix: String,
    pub claim_minutes: u32,
    pub environment: String,
    /// CloudWatch Logs group of the review log, and the metrics namespace of its lines.
    pub log_group: String,
    pub namespace: String,
    /// Only photos the router sent to this child model (`review --model <child>`).
    pub only_child: Option<String>,
}

/// Who is reviewing: the caller's ARN, and the browser session (one reviewer may have two).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reviewer {
    pub arn: String,
    pub session: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Claim {
    reviewer: String,
    session: String,
    /// Seconds since the Unix epoch.
    claimed_at: u64,
}

/// A claimed item, ready to show, or why it cannot be reviewed.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    Ready(Box<Item>),
    Broken { stem: String, problem: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub stem: String,
    pub record: Record,
    /// The child model's classes (species of the sub-group the parent chose).
    pub species: Vec<String>,
    /// The parent model's classes (sub-groups).
    pub subgroups: Vec<String>,
}

/// What a reviewer decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A species of the child model that answered.
    Species(String),
    /// Another sub-group of the parent (the species is not among the child's classes).
    Subgroup(String),
    /// Not usable as training data.
    Reject,
}

/// How a decision compares with the models' answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Agreed,
    Corrected,
    Rejected,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    pub verdict: Verdict,
    /// The raw-data keys the photo was copied to.
    pub copied_to: Vec<String>,
    /// The review log could not be written (the decision stands).
    pub log_problem: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("photo {stem} is no longer yours: another reviewer holds it or it was decided")]
    NotClaimed { stem: String },
    #[error("photo {stem} was already decided by another reviewer")]
    AlreadyDecided { stem: String },
    #[error("photo {stem} cannot be reviewed: {problem}")]
    Broken { stem: String, problem: String },
    #[error("`{label}` is not a class of model `{model}`")]
    UnknownLabel { label: String, model: String },
    #[error("cannot {doing}: {source}")]
    Aws { doing: String, source: AwsError },
}

impl ReviewError {
    fn aws(doing: impl Into<String>) -> impl FnOnce(AwsError) -> ReviewError {
        let doing = doing.into();
        move |source| ReviewError::Aws { doing, source }
    }

    /// What the reviewer can do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            ReviewError::NotClaimed { .. } | ReviewError::AlreadyDecided { .. } => {
                "nothing was changed; carry on with the next photo"
            }
            ReviewError::Broken { .. } => {
                "nothing was changed; skip it (it expires with the unreviewed photos) or fix the item in the bucket"
            }
            ReviewError::UnknownLabel { .. } => "nothing was changed; pick a class from the list",
            ReviewError::Aws { source, .. } => match source {
                AwsError::AccessDenied(_) => {
                    "nothing was changed; your credentials need the review permissions (docs/review.md)"
                }
                AwsError::Unreachable(_) | AwsError::Transport(_) => {
                    "nothing was changed; check the network and try again"
                }
                _ => "nothing was lost; try again",
            },
        }
    }
}

pub struct Queue<S> {
    pub store: S,
    pub settings: Settings,
    keys: Keys,
    classes: Mutex<BTreeMap<String, Vec<String>>>,
}

impl<S: ReviewStore> Queue<S> {
    pub fn new(store: S, settings: Settings) -> Self {
        let keys = Keys {
            parent: settings.parent.clone(),
        };
        Queue {
            store,
            settings,
            keys,
            classes: Mutex::default(),
        }
    }

    fn bucket(&self) -> &str {
        &self.settings.bucket
    }

    /// The pending items, oldest first.
    pub async fn pending(&self) -> Result<Vec<String>, ReviewError> {
        let keys = self
            .store
            .list(self.bucket(), &self.keys.pending_prefix(), LIST_LIMIT)
            .await
            .map_err(ReviewError::aws(format!(
                "list the photos waiting under s3://{}/{}",
                self.bucket(),
                self.keys.pending_prefix()
            )))?;
        Ok(keys
            .iter()
            .filter_map(|key| self.keys.stem(key).map(str::to_string))
            .collect())
    }

    /// Claims the oldest item this reviewer may take (skipping `skipped`), and loads it.
    pub async fn next(
        &self,
        reviewer: &Reviewer,
        skipped: &BTreeSet<String>,
        now: u64,
    ) -> Result<Option<Next>, ReviewError> {
        for stem in self.pending().await? {
            if skipped.contains(&stem) || !self.wanted(&stem).await {
                continue;
            }
            if !self.claim(&stem, reviewer, now).await? {
                continue;
            }
            match self.load(&stem).await? {
                Some(next) => return Ok(Some(next)),
                // Decided and removed between the listing and now.
                None => continue,
            }
        }
        Ok(None)
    }

    /// Whether the item is for the child model asked for (an unreadable record is shown, so
    /// its problem is seen).
    async fn wanted(&self, stem: &str) -> bool {
        let Some(child) = &self.settings.only_child else {
            return true;
        };
        match self.record(stem).await {
            Ok(Some(record)) => record.child.model == *child,
            Ok(None) => false,
            Err(_) => true,
        }
    }

    /// Takes the item for this reviewer: a new claim only if none exists, or a lapsed one
    /// replaced only if it is still the version read. False when someone else holds it.
    pub async fn claim(
        &self,
        stem: &str,
        reviewer: &Reviewer,
        now: u64,
    ) -> Result<bool, ReviewError> {
        let key = self.keys.claim(stem);
        let existing = self
            .store
            .get(self.bucket(), &key)
            .await
            .map_err(ReviewError::aws(format!("read the claim on {stem}")))?;
        let condition = match existing {
            None => Condition::IfAbsent,
            Some(fetched) => match serde_json::from_slice::<Claim>(&fetched.body) {
                Ok(claim) if claim.session == reviewer.session => return Ok(true),
                Ok(claim)
                    if now < claim.claimed_at + u64::from(self.settings.claim_minutes) * 60 =>
                {
                    return Ok(false);
                }
                // Lapsed, or not a claim at all: replace exactly what was read.
                _ => Condition::IfMatch(fetched.etag),
            },
        };
        let claim = Claim {
            reviewer: reviewer.arn.clone(),
            session: reviewer.session.clone(),
            claimed_at: now,
        };
        let body = serde_json::to_vec(&claim).unwrap_or_default();
        match self
            .store
            .put(
                self.bucket(),
                &key,
                body,
                "application/json",
                Some(condition),
            )
            .await
        {
            Ok(()) => Ok(true),
            Err(WriteError::Conflict) => Ok(false),
            Err(WriteError::Aws(source)) => Err(ReviewError::Aws {
                doing: format!("claim {stem}"),
                source,
            }),
        }
    }

    async fn holds(&self, stem: &str, reviewer: &Reviewer) -> Result<bool, ReviewError> {
        let claim = self
            .store
            .get(self.bucket(), &self.keys.claim(stem))
            .await
            .map_err(ReviewError::aws(format!("read the claim on {stem}")))?;
        Ok(claim
            .and_then(|fetched| serde_json::from_slice::<Claim>(&fetched.body).ok())
            .is_some_and(|claim| claim.session == reviewer.session))
    }

    /// The item's record, checked; None when it is gone.
    async fn record(&self, stem: &str) -> Result<Option<Record>, ReviewError> {
        let key = self.keys.record(stem);
        let Some(fetched) = self
            .store
            .get(self.bucket(), &key)
            .await
            .map_err(ReviewError::aws(format!("read {key}")))?
        else {
            return Ok(None);
        };
        let broken = |problem: String| ReviewError::Broken {
            stem: stem.to_string(),
            problem,
        };
        let record: Record = serde_json::from_slice(&fetched.body)
            .map_err(|error| broken(format!("its record {key} does not parse ({error})")))?;
        if !record.image.key.starts_with(&self.keys.pending_prefix()) {
            return Err(broken(format!(
                "its record names image {}, outside {}",
                record.image.key,
                self.keys.pending_prefix()
            )));
        }
        Ok(Some(record))
    }

    /// The photo's bytes and content type, for the page.
    pub async fn image(&self, stem: &str) -> Result<Option<(Vec<u8>, String)>, ReviewError> {
        let Some(record) = self.record(stem).await? else {
            return Ok(None);
        };
        let image = self
            .store
            .get(self.bucket(), &record.image.key)
            .await
            .map_err(ReviewError::aws(format!("read {}", record.image.key)))?;
        Ok(image.map(|fetched| (fetched.body, record.image.content_type)))
    }

    async fn load(&self, stem: &str) -> Result<Option<Next>, ReviewError> {
        let broken = |problem: String| {
            Ok(Some(Next::Broken {
                stem: stem.to_string(),
                problem,
            }))
        };
        let record = match self.record(stem).await {
            Ok(Some(record)) => record,
            Ok(None) => return Ok(None),
            Err(ReviewError::Broken { problem, .. }) => return broken(problem),
            Err(error) => return Err(error),
        };
        if self
            .store
            .get(self.bucket(), &record.image.key)
            .await
            .map_err(ReviewError::aws(format!("read {}", record.image.key)))?
            .is_none()
        {
            return broken(format!("its image {} is gone", record.image.key));
        }
        let species = match self.classes(&record.child).await {
            Ok(classes) => classes,
            Err(ReviewError::Broken { problem, .. }) => return broken(problem),
            Err(error) => return Err(error),
        };
        let subgroups = match self.classes(&record.parent).await {
            Ok(classes) => classes,
            Err(ReviewError::Broken { problem, .. }) => return broken(problem),
            Err(error) => return Err(error),
        };
        Ok(Some(Next::Ready(Box::new(Item {
            stem: stem.to_string(),
            record,
            species,
            subgroups,
        }))))
    }

    /// A model's class names, from the classes.json its package names (kept per package).
    async fn classes(&self, answer: &super::record::Answer) -> Result<Vec<String>, ReviewError> {
        let broken = |problem: String| ReviewError::Broken {
            stem: String::new(),
            problem,
        };
        let Some(package) = answer.package.as_deref() else {
            return Err(broken(format!(
                "its record names no package for model `{}`",
                answer.model
            )));
        };
        if let Some(names) = self.cached(package) {
            return Ok(names);
        }
        let uri = self
            .store
            .classes_uri(package)
            .await
            .map_err(ReviewError::aws(format!(
                "describe model package {package}"
            )))?
            .ok_or_else(|| broken(format!("package {package} has no `classes` metadata")))?;
        let (bucket, key) =
            split_uri(&uri).ok_or_else(|| broken(format!("`{uri}` is not an s3:// URI")))?;
        let fetched = self
            .store
            .get(bucket, key)
            .await
            .map_err(ReviewError::aws(format!("read {uri}")))?
            .ok_or_else(|| broken(format!("the class names {uri} are gone")))?;
        let names: Vec<String> = serde_json::from_slice(&fetched.body)
            .map_err(|error| broken(format!("the class names {uri} do not parse ({error})")))?;
        if let Ok(mut cache) = self.classes.lock() {
            cache.insert(package.to_string(), names.clone());
        }
        Ok(names)
    }

    fn cached(&self, package: &str) -> Option<Vec<String>> {
        self.classes.lock().ok()?.get(package).cloned()
    }

    /// A label checked against the model's classes, and whether it agrees with the model's
    /// top class.
    async fn verdict(
        &self,
        answer: &super::record::Answer,
        label: &str,
        stem: &str,
    ) -> Result<Verdict, ReviewError> {
        let known = self
            .classes(answer)
            .await
            .map_err(|error| restem(error, stem))?;
        check_label(label, &known, &answer.model)?;
        Ok(if label == answer.name {
            Verdict::Agreed
        } else {
            Verdict::Corrected
        })
    }

    /// Carries out a decision on an item this reviewer holds. Copies first, then the audit
    /// record (written only if absent), then the item leaves the queue: a failure at any
    /// step leaves the item pending and nothing lost.
    pub async fn decide(
        &self,
        reviewer: &Reviewer,
        stem: &str,
        decision: &Decision,
        now: u64,
    ) -> Result<Decided, ReviewError> {
        if !self.holds(stem, reviewer).await? {
            return Err(ReviewError::NotClaimed { stem: stem.into() });
        }
        let record = self
            .record(stem)
            .await?
            .ok_or_else(|| ReviewError::NotClaimed { stem: stem.into() })?;
        let broken = |problem: String| ReviewError::Broken {
            stem: stem.into(),
            problem,
        };
        if self
            .store
            .get(self.bucket(), &record.image.key)
            .await
            .map_err(ReviewError::aws(format!("read {}", record.image.key)))?
            .is_none()
        {
            return Err(broken(format!("its image {} is gone", record.image.key)));
        }
        let file = format!("{stem}.{}", extension(&record.image.content_type));
        let raw = &self.settings.raw_prefix;
        let (verdict, label, copied_to) = match decision {
            Decision::Species(species) => {
                let verdict = self.verdict(&record.child, species, stem).await?;
                // The child served the sub-group the parent chose: both learn from it.
                let targets = vec![
                    format!("{raw}{}/{species}/{file}", record.child.model),
                    format!("{raw}{}/{}/{file}", record.parent.model, record.parent.name),
                ];
                (verdict, species.clone(), targets)
            }
            Decision::Subgroup(subgroup) => {
                let verdict = self.verdict(&record.parent, subgroup, stem).await?;
                let targets = vec![format!("{raw}{}/{subgroup}/{file}", record.parent.model)];
                (verdict, subgroup.clone(), targets)
            }
            Decision::Reject => (Verdict::Rejected, String::new(), Vec::new()),
        };
        for target in &copied_to {
            self.store
                .copy(self.bucket(), &record.image.key, target)
                .await
                .map_err(ReviewError::aws(format!("copy the photo to {target}")))?;
        }
        let audit = serde_json::json!({
            "item": stem,
            "record": record,
            "decision": {
                "verdict": verdict,
                "label": (!label.is_empty()).then_some(&label),
                "level": match decision {
                    Decision::Species(_) => "species",
                    Decision::Subgroup(_) => "subgroup",
                    Decision::Reject => "none",
                },
                "copied_to": copied_to,
            },
            "reviewer": reviewer.arn,
            "session": reviewer.session,
            "decided_at": rfc3339(now),
        });
        let done = self.keys.done(stem);
        match self
            .store
            .put(
                self.bucket(),
                &done,
                serde_json::to_vec_pretty(&audit).unwrap_or_default(),
                "application/json",
                Some(Condition::IfAbsent),
            )
            .await
        {
            Ok(()) => {}
            Err(WriteError::Conflict) => {
                return Err(ReviewError::AlreadyDecided { stem: stem.into() });
            }
            Err(WriteError::Aws(source)) => {
                return Err(ReviewError::Aws {
                    doing: format!("write the audit record {done}"),
                    source,
                });
            }
        }
        // The record first: once it is gone the item is out of the queue.
        for key in [
            self.keys.record(stem),
            record.image.key.clone(),
            self.keys.claim(stem),
        ] {
            self.store
                .delete(self.bucket(), &key)
                .await
                .map_err(ReviewError::aws(format!("remove {key} from the queue")))?;
        }
        let log_problem = self
            .log(reviewer, stem, verdict, &label, now)
            .await
            .err()
            .map(|error| error.to_string());
        Ok(Decided {
            verdict,
            copied_to,
            log_problem,
        })
    }

    /// The decision as one review-log line in CloudWatch's embedded metric format: the
    /// dashboard's reviewed / agreed / corrected / rejected counts.
    async fn log(
        &self,
        reviewer: &Reviewer,
        stem: &str,
        verdict: Verdict,
        label: &str,
        now: u64,
    ) -> Result<(), AwsError> {
        let line = metrics_line(&self.settings, reviewer, stem, verdict, label, now);
        let stream = format!("review-{}", reviewer.session);
        self.store
            .log(&self.settings.log_group, &stream, now as i64 * 1000, line)
            .await
    }
}

fn restem(error: ReviewError, stem: &str) -> ReviewError {
    match error {
        ReviewError::Broken { problem, .. } => ReviewError::Broken {
            stem: stem.into(),
            problem,
        },
        other => other,
    }
}

fn check_label(label: &str, known: &[String], model: &str) -> Result<(), ReviewError> {
    if known.iter().any(|name| name == label) && is_folder_name(label) {
        Ok(())
    } else {
        Err(ReviewError::UnknownLabel {
            label: label.into(),
            model: model.into(),
        })
    }
}

pub fn metrics_line(
    settings: &Settings,
    reviewer: &Reviewer,
    stem: &str,
    verdict: Verdict,
    label: &str,
    now: u64,
) -> String {
    let count = |wanted: Verdict| u32::from(verdict == wanted);
    serde_json::json!({
        "_aws": {
            "Timestamp": now * 1000,
            "CloudWatchMetrics": [{
                "Namespace": settings.namespace,
                "Dimensions": [["Environment"], ["Environment", "Model"]],
                "Metrics": [
                    {"Name": "Reviewed", "Unit": "Count"},
                    {"Name": "Agreed", "Unit": "Count"},
                    {"Name": "Corrected", "Unit": "Count"},
                    {"Name": "Rejected", "Unit": "Count"}
                ]
            }]
        },
        "Environment": settings.environment,
        "Model": settings.parent,
        "Reviewed": 1,
        "Agreed": count(Verdict::Agreed),
        "Corrected": count(Verdict::Corrected),
        "Rejected": count(Verdict::Rejected),
        "Item": stem,
        "Label": label,
        "Reviewer": reviewer.arn,
    })
    .to_string()
}

/// Seconds since the Unix epoch as RFC 3339 (UTC).
pub fn rfc3339(seconds: u64) -> String {
    aws_smithy_types::DateTime::from_secs(seconds as i64)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}
