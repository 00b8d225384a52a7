//! Carries out a reviewed `Plan`: stacks in dependency order through a bounded pool (a stack
//! starts as soon as what it depends on is done, not level by level), each through a change
//! set, with upstream outputs fed to downstream parameters. Progress goes through `Reporter`;
//! nothing here prints.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;

use crate::aws::{
    AwsError, AwsResult, ChangeSetKind, ChangeSetRequest, ChangeSetStatus, CloudFormation,
    StackEvent, TemplateSource,
};
use crate::plan::{DATA_BEARING, Plan, ResourceAction, StackAction, StackPlan};
use crate::validate::MAX_INLINE_BODY;

/// Change sets this tool creates start with this, so leftovers can be recognised and removed.
pub const CHANGE_SET_PREFIX: &str = "mlops-infra-";

/// How to wait and retry.
#[derive(Debug, Clone, Copy)]
pub struct Polling {
    pub initial: Duration,
    pub max: Duration,
    /// Give up waiting on one stack after this long.
    pub timeout: Duration,
    /// Attempts for a call that fails with a throttling or connection error.
    pub attempts: u32,
}

impl Default for Polling {
    fn default() -> Self {
        Polling {
            initial: Duration::from_secs(2),
            max: Duration::from_secs(15),
            timeout: Duration::from_secs(3 * 3600),
            attempts: 6,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Logical IDs whose replacement or removal is allowed although dangerous.
    pub allow_replace: Vec<String>,
    pub concurrency: usize,
    pub polling: Polling,
    /// This run's change-set name (starts with `CHANGE_SET_PREFIX`); injected for tests.
    pub change_set_name: String,
    /// Bucket for template bodies over the inline limit.
    pub template_bucket: String,
    /// Start a stack's dependents once it is `CONFIGURATION_COMPLETE` (and the outputs they
    /// read are there) rather than `*_COMPLETE` (`apply.start_dependents_at`).
    pub early_dependents: bool,
}

/// What happened to one stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Applied {
        status: String,
    },
    Unchanged,
    Failed {
        status: Option<String>,
        resource: Option<String>,
        reason: String,
    },
    Skipped {
        reason: String,
    },
    Interrupted {
        reason: String,
    },
}

impl Outcome {
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Applied { .. } | Outcome::Unchanged)
    }
}

/// Progress, as it happens.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    Started { stack: String },
    Note { stack: String, message: String },
    Event { stack: String, event: StackEvent },
    Finished { stack: String, outcome: Outcome },
}

/// Receives progress; implementations keep their own state behind interior mutability.
pub trait Reporter {
    fn report(&self, progress: Progress);
}

/// Drops everything: for callers that only want the result.
pub struct Silent;

impl Reporter for Silent {
    fn report(&self, _: Progress) {}
}

/// Set when the user presses Ctrl-C: waits stop, unexecuted change sets are deleted.
#[derive(Debug, Default)]
pub struct Interrupt(Cell<bool>);

impl Interrupt {
    pub fn raise(&self) {
        self.0.set(true);
    }

    pub fn is_raised(&self) -> bool {
        self.0.get()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StackResult {
    pub id: String,
    pub name: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ApplyReport {
    pub stacks: Vec<StackResult>,
    /// By stack name: the fingerprint of the state each applied stack settled in.
    #[serde(skip)]
    pub settled: BTreeMap<String, String>,
    /// By stack id: the outputs of each stack that applied or was unchanged.
    #[serde(skip)]
    pub outputs: BTreeMap<String, BTreeMap<String, String>>,
}

impl ApplyReport {
    pub fn succeeded(&self) -> bool {
        self.stacks.iter().all(|stack| stack.outcome.is_success())
    }
}

/// Why a plan may not be applied as it stands. Checked before anything is touched.
pub fn refusals(plan: &Plan, options: &ApplyOptions) -> Vec<String> {
    let mut refusals = Vec::new();
    for retired in &plan.retired {
        if let Some(reason) = &retired.blocked {
            refusals.push(format!(
                "stack {} is retired and its resources must move out, but {reason}",
                retired.name
            ));
        }
    }
    for stack in &plan.stacks {
        if stack.action == StackAction::Blocked {
            refusals.push(format!(
                "stack {} is blocked: {}",
                stack.name,
                stack
                    .note
                    .as_deref()
                    .unwrap_or("its status does not allow changes")
            ));
        }
        for resource in stack.resources.iter().filter(|resource| resource.dangerous) {
            if !options.allow_replace.contains(&resource.logical_id) {
                let what = if resource.action == ResourceAction::Remove {
                    "delete"
                } else {
                    "replace"
                };
                refusals.push(format!(
                    "refusing to {what} {} ({}) in stack {}: it holds data; pass `--allow-replace {}` if that is intended",
                    resource.logical_id, resource.resource_type, stack.name, resource.logical_id
                ));
            }
        }
    }
    refusals
}

/// Stacks that changed since the plan was made (a saved plan is then stale).
pub async fn stale_stacks<C: CloudFormation>(
    client: &C,
    plan: &Plan,
    polling: Polling,
) -> AwsResult<Vec<String>> {
    let mut stale = Vec::new();
    for stack in &plan.stacks {
        let current = retry(polling, || client.stack_state(&stack.name)).await?;
        let fingerprint = current.as_ref().map(|current| current.fingerprint());
        if fingerprint != stack.fingerprint {
            stale.push(stack.name.clone());
        }
    }
    for retired in &plan.retired {
        let current = retry(polling, || client.stack_state(&retired.name)).await?;
        if current.map(|current| current.fingerprint()).as_ref() != Some(&retired.fingerprint) {
            stale.push(retired.name.clone());
        }
    }
    Ok(stale)
}

/// Applies `plan`. Callers check `refusals` (and, for a saved plan, `stale_stacks`) first.
pub async fn apply<C: CloudFormation>(
    client: &C,
    plan: &Plan,
    options: &ApplyOptions,
    reporter: &dyn Reporter,
    interrupt: &Interrupt,
) -> ApplyReport {
    // Resources leave retired stacks first: the stacks below declare them.
    let retired = crate::refactor::retire(client, plan, options, reporter, interrupt).await;
    if let Some(failed) = retired.iter().find(|result| !result.outcome.is_success()) {
        let mut stacks = retired.clone();
        stacks.extend(plan.stacks.iter().map(|stack| StackResult {
            id: stack.id.clone(),
            name: stack.name.clone(),
            outcome: Outcome::Skipped {
                reason: format!("moving resources out of {} did not finish", failed.id),
            },
        }));
        return ApplyReport {
            stacks,
            ..ApplyReport::default()
        };
    }
    let after;
    let plan = if plan.retired.is_empty() {
        plan
    } else {
        after = crate::refactor::after_moves(plan);
        &after
    };
    let mut report = apply_stacks(client, plan, options, reporter, interrupt).await;
    report.stacks.splice(0..0, retired);
    report
}

/// Applies the plan's stacks, through the bounded pool.
async fn apply_stacks<C: CloudFormation>(
    client: &C,
    plan: &Plan,
    options: &ApplyOptions,
    reporter: &dyn Reporter,
    interrupt: &Interrupt,
) -> ApplyReport {
    let outputs: RefCell<BTreeMap<String, BTreeMap<String, String>>> =
        RefCell::new(BTreeMap::new());
    // Assets known to be in S3 in this run (stacks share step code): checked once.
    let present: RefCell<BTreeSet<(String, String)>> = RefCell::new(BTreeSet::new());
    let fingerprints: RefCell<BTreeMap<String, String>> = RefCell::new(BTreeMap::new());
    let mut outcomes: BTreeMap<String, Outcome> = BTreeMap::new();
    // Stacks configured and still stabilising whose dependents may start; a message wakes the
    // scheduler when one is.
    let configured: RefCell<BTreeSet<String>> = RefCell::new(BTreeSet::new());
    let (wake, mut woken) = futures::channel::mpsc::unbounded::<()>();
    let mut running = FuturesUnordered::new();
    let mut started: BTreeSet<String> = BTreeSet::new();
    let concurrency = options.concurrency.max(1);
    let planned: BTreeSet<&str> = plan.stacks.iter().map(|stack| stack.id.as_str()).collect();
    loop {
        // Settle stacks whose dependencies failed, then start those whose dependencies are done.
        for stack in &plan.stacks {
            if started.contains(&stack.id) {
                continue;
            }
            if let Some(failed) = stack.depends_on.iter().find(|dependency| {
                outcomes
                    .get(*dependency)
                    .is_some_and(|outcome| !outcome.is_success())
            }) {
                let outcome = Outcome::Skipped {
                    reason: format!("{failed} did not apply"),
                };
                reporter.report(Progress::Finished {
                    stack: stack.name.clone(),
                    outcome: outcome.clone(),
                });
                outcomes.insert(stack.id.clone(), outcome);
                started.insert(stack.id.clone());
                continue;
            }
            // A dependency outside the plan (`--stack`) is deployed as it is.
            let ready = stack.depends_on.iter().all(|dependency| {
                outcomes.contains_key(dependency)
                    || configured.borrow().contains(dependency)
                    || !planned.contains(dependency.as_str())
            });
            if ready && running.len() < concurrency && !interrupt.is_raised() {
                started.insert(stack.id.clone());
                let outputs = &outputs;
                let present = &present;
                let fingerprints = &fingerprints;
                let configured = &configured;
                let wake = wake.clone();
                running.push(async move {
                    reporter.report(Progress::Started {
                        stack: stack.name.clone(),
                    });
                    let on_configured = |found: BTreeMap<String, String>| {
                        if !options.early_dependents || !outputs_for_dependents(plan, stack, &found)
                        {
                            return;
                        }
                        outputs.borrow_mut().insert(stack.id.clone(), found);
                        configured.borrow_mut().insert(stack.id.clone());
                        reporter.report(Progress::Note {
                            stack: stack.name.clone(),
                            message: "configured (CONFIGURATION_COMPLETE): its dependents start while it stabilises".into(),
                        });
                        let _ = wake.unbounded_send(());
                    };
                    let outcome = apply_stack(
                        client,
                        plan,
                        stack,
                        options,
                        outputs,
                        present,
                        fingerprints,
                        reporter,
                        interrupt,
                        &on_configured,
                    )
                    .await;
                    reporter.report(Progress::Finished {
                        stack: stack.name.clone(),
                        outcome: outcome.clone(),
                    });
                    (stack.id.clone(), outcome)
                });
            }
        }
        let finished = tokio::select! {
            finished = running.next() => Some(finished),
            _ = woken.next() => None,
        };
        match finished {
            Some(Some((id, outcome))) => {
                outcomes.insert(id, outcome);
            }
            Some(None) => break,
            // A stack is configured: look again at what may start.
            None => {}
        }
    }
    let stacks = plan
        .stacks
        .iter()
        .map(|stack| StackResult {
            id: stack.id.clone(),
            name: stack.name.clone(),
            outcome: outcomes.remove(&stack.id).unwrap_or(Outcome::Interrupted {
                reason: "not started: the run was interrupted".into(),
            }),
        })
        .collect();
    ApplyReport {
        stacks,
        settled: fingerprints.take(),
        outputs: outputs.take(),
    }
}

/// Whether `found` holds every output of `stack` that the plan's other stacks read.
fn outputs_for_dependents(
    plan: &Plan,
    stack: &StackPlan,
    found: &BTreeMap<String, String>,
) -> bool {
    plan.stacks
        .iter()
        .flat_map(|other| &other.parameters)
        .filter_map(|parameter| parameter.from_output.as_deref()?.split_once('.'))
        .filter(|(producer, _)| *producer == stack.id)
        .all(|(_, output)| found.contains_key(output))
}

#[allow(clippy::too_many_arguments)]
async fn apply_stack<C: CloudFormation>(
    client: &C,
    plan: &Plan,
    stack: &StackPlan,
    options: &ApplyOptions,
    outputs: &RefCell<BTreeMap<String, BTreeMap<String, String>>>,
    present: &RefCell<BTreeSet<(String, String)>>,
    fingerprints: &RefCell<BTreeMap<String, String>>,
    reporter: &dyn Reporter,
    interrupt: &Interrupt,
    on_configured: &dyn Fn(BTreeMap<String, String>),
) -> Outcome {
    let polling = options.polling;
    let note = |message: String| {
        reporter.report(Progress::Note {
            stack: stack.name.clone(),
            message,
        })
    };
    let failed = |reason: String| Outcome::Failed {
        status: None,
        resource: None,
        reason,
    };

    if stack.action == StackAction::NoChange {
        return match retry(polling, || client.stack_state(&stack.name)).await {
            Ok(Some(current)) => {
                outputs
                    .borrow_mut()
                    .insert(stack.id.clone(), current.outputs);
                Outcome::Unchanged
            }
            Ok(None) => failed("the stack disappeared since the plan was made".into()),
            Err(error) => failed(error.to_string()),
        };
    }

    let mut parameters = BTreeMap::new();
    for parameter in &stack.parameters {
        let value = parameter.value.clone().or_else(|| {
            let (producer, output) = parameter.from_output.as_deref()?.split_once('.')?;
            outputs.borrow().get(producer)?.get(output).cloned()
        });
        match value {
            Some(value) => {
                parameters.insert(parameter.name.clone(), value);
            }
            None => {
                return failed(format!(
                    "parameter {} has no value: output {} was not found",
                    parameter.name,
                    parameter.from_output.as_deref().unwrap_or("?")
                ));
            }
        }
    }

    // A stack the plan found no trace of holds no change set from an interrupted run.
    if stack.deployed_status.is_some()
        && let Err(error) = remove_leftover_change_sets(client, &stack.name, polling).await
    {
        return failed(error.to_string());
    }
    if stack.action == StackAction::Recreate {
        note("deleting the stack left by a failed first create".into());
        if let Err(outcome) = delete_and_wait(client, &stack.name, polling, interrupt).await {
            return outcome;
        }
    }

    for asset in &stack.assets {
        let place = (asset.bucket.clone(), asset.key.clone());
        if present.borrow().contains(&place) {
            continue;
        }
        // Asset keys are content hashes: an object already there holds these bytes.
        match retry(polling, || client.object_exists(&asset.bucket, &asset.key)).await {
            Ok(true) => {
                present.borrow_mut().insert(place);
                continue;
            }
            Ok(false) => {}
            Err(error) => {
                return failed(format!(
                    "cannot check s3://{}/{}: {error}",
                    asset.bucket, asset.key
                ));
            }
        }
        let bytes = asset.bytes();
        if let Err(error) = retry(polling, || {
            client.upload_template(&asset.bucket, &asset.key, &bytes)
        })
        .await
        {
            return failed(format!(
                "cannot upload s3://{}/{}: {error}",
                asset.bucket, asset.key
            ));
        }
        note(format!("uploaded s3://{}/{}", asset.bucket, asset.key));
        present.borrow_mut().insert(place);
    }
    let template = if stack.template_body.len() > MAX_INLINE_BODY {
        let key = format!(
            "cloudformation/{}/{}.yaml",
            stack.name, options.change_set_name
        );
        match retry(polling, || {
            client.upload_template(
                &options.template_bucket,
                &key,
                stack.template_body.as_bytes(),
            )
        })
        .await
        {
            Ok(url) => {
                note(format!(
                    "template is {} bytes; uploaded to {url}",
                    stack.template_body.len()
                ));
                TemplateSource::Url(url)
            }
            Err(error) => return failed(format!("cannot upload the template: {error}")),
        }
    } else {
        TemplateSource::Body(stack.template_body.clone())
    };
    let kind = match stack.action {
        StackAction::Update => ChangeSetKind::Update,
        _ => ChangeSetKind::Create,
    };
    let request = ChangeSetRequest {
        stack_name: stack.name.clone(),
        change_set_name: options.change_set_name.clone(),
        kind,
        template,
        parameters,
        tags: stack.tags.clone(),
        capabilities: stack.capabilities.clone(),
        role_arn: stack.deploy_role.clone(),
        description: format!("mlops-infra apply of {} ({})", plan.environment, stack.id),
        rollback: stack.rollback.clone(),
        revert_drift: stack.revert_drift,
    };
    let change_set = match retry(polling, || client.create_change_set(&request)).await {
        Ok(id) => id,
        Err(error) => return failed(format!("cannot create the change set: {error}")),
    };
    match wait_for_change_set(client, &change_set, polling, interrupt).await {
        Ok(ChangeSetStatus::Ready) => {}
        Ok(ChangeSetStatus::NoChanges) => {
            let _ = client.delete_change_set(&change_set).await;
            return match retry(polling, || client.stack_state(&stack.name)).await {
                Ok(Some(current)) => {
                    outputs
                        .borrow_mut()
                        .insert(stack.id.clone(), current.outputs);
                    Outcome::Unchanged
                }
                Ok(None) => failed("the stack does not exist".into()),
                Err(error) => failed(error.to_string()),
            };
        }
        Ok(ChangeSetStatus::Failed(reason)) => {
            // A failed pre-deployment validation says what failed in DescribeEvents: that
            // comes first, CloudFormation's general reason after it.
            let source = crate::aws::EventSource::ChangeSet(change_set.clone());
            let failed_checks: Vec<String> =
                retry(polling, || client.operation_events(&source, true))
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|event| event.validation)
                    .filter(|validation| validation.status == "FAILED")
                    .map(|validation| {
                        format!(
                            "{}{}: {}",
                            validation.name,
                            validation
                                .path
                                .map(|path| format!(" at {path}"))
                                .unwrap_or_default(),
                            validation
                                .reason
                                .unwrap_or_else(|| "no reason given".into())
                        )
                    })
                    .collect();
            let _ = client.delete_change_set(&change_set).await;
            return failed(if failed_checks.is_empty() {
                format!("the change set failed: {reason}")
            } else {
                format!(
                    "the change set failed validation: {} ({reason})",
                    failed_checks.join("; ")
                )
            });
        }
        Err(error) => {
            let _ = client.delete_change_set(&change_set).await;
            return failed(format!("cannot read the change set: {error}"));
        }
        Ok(ChangeSetStatus::Pending) => {
            let _ = client.delete_change_set(&change_set).await;
            return if interrupt.is_raised() {
                Outcome::Interrupted {
                    reason: "interrupted before executing; the change set was deleted".into(),
                }
            } else {
                failed("the change set did not become ready in time".into())
            };
        }
    }
    if interrupt.is_raised() {
        let _ = client.delete_change_set(&change_set).await;
        return Outcome::Interrupted {
            reason: "interrupted before executing; the change set was deleted".into(),
        };
    }

    let allowed: Vec<&str> = stack
        .resources
        .iter()
        .filter(|resource| {
            resource.dangerous && options.allow_replace.contains(&resource.logical_id)
        })
        .map(|resource| resource.logical_id.as_str())
        .collect();
    if plan.protected && !allowed.is_empty() {
        // The stack policy protects data-bearing resources; let through exactly what was allowed.
        let policy = stack_policy(stack, &allowed);
        if let Err(error) = retry(polling, || client.set_stack_policy(&stack.name, &policy)).await {
            return failed(format!(
                "cannot relax the stack policy for {}: {error}",
                allowed.join(", ")
            ));
        }
    }

    // Events from before this run are not news. A stack the plan found no trace of has none
    // but the one its change set just made (REVIEW_IN_PROGRESS, never reported): not read.
    let earlier = if stack.deployed_status.is_none() {
        Vec::new()
    } else {
        retry(polling, || client.stack_events(&stack.name))
            .await
            .unwrap_or_default()
    };
    let seen: RefCell<BTreeSet<String>> =
        RefCell::new(earlier.into_iter().map(|event| event.id).collect());
    if let Err(error) = retry(polling, || client.execute_change_set(&change_set)).await {
        let _ = client.delete_change_set(&change_set).await;
        return failed(format!("cannot execute the change set: {error}"));
    }
    let mut settled_outputs = None;
    let outcome = wait_for_stack(
        client,
        stack,
        polling,
        reporter,
        &seen,
        interrupt,
        on_configured,
        &mut |fingerprint, found| {
            fingerprints
                .borrow_mut()
                .insert(stack.name.clone(), fingerprint);
            settled_outputs = Some(found);
        },
    )
    .await;
    if let Outcome::Applied { .. } = outcome {
        if plan.protected {
            let policy = stack_policy(stack, &[]);
            for result in [
                retry(polling, || {
                    client.set_termination_protection(&stack.name, true)
                })
                .await,
                retry(polling, || client.set_stack_policy(&stack.name, &policy)).await,
            ] {
                if let Err(error) = result {
                    note(format!("could not protect the stack: {error}"));
                }
            }
        }
        // The outputs of the state it settled in: protecting it changes none.
        if let Some(found) = settled_outputs {
            outputs.borrow_mut().insert(stack.id.clone(), found);
        }
    }
    outcome
}

/// Why an operation failed, from its failed events (`DescribeEvents`, oldest first): the first
/// resource that failed and its reason, or a pre-deployment validation's own message. `None`
/// when the events are not answered or name no resource.
async fn root_cause<C: CloudFormation>(
    client: &C,
    operation: &str,
    stack_name: &str,
    polling: Polling,
) -> Option<(Option<String>, String)> {
    let source = crate::aws::EventSource::Operation(operation.to_string());
    let events = retry(polling, || client.operation_events(&source, true))
        .await
        .ok()?;
    let first = events.iter().find(|event| {
        event.validation.is_some()
            || (event.event_type != "STACK_EVENT"
                && event.logical_id.as_deref() != Some(stack_name))
    })?;
    let reason = match &first.validation {
        Some(validation) => format!(
            "{}{}: {}",
            validation.name,
            validation
                .path
                .as_deref()
                .map(|path| format!(" at {path}"))
                .unwrap_or_default(),
            validation
                .reason
                .clone()
                .or(first.reason.clone())
                .unwrap_or_else(|| "no reason given".into())
        ),
        None => first
            .reason
            .clone()
            .unwrap_or_else(|| "no reason given".into()),
    };
    Some((first.logical_id.clone(), reason))
}

/// Polls the stack until it settles, reporting new events; on failure names the first
/// resource that failed and why. A stack that settled applied is handed to `settled` (its
/// fingerprint and outputs) before the outcome returns.
#[allow(clippy::too_many_arguments)]
async fn wait_for_stack<C: CloudFormation>(
    client: &C,
    stack: &StackPlan,
    polling: Polling,
    reporter: &dyn Reporter,
    seen: &RefCell<BTreeSet<String>>,
    interrupt: &Interrupt,
    on_configured: &dyn Fn(BTreeMap<String, String>),
    settled: &mut dyn FnMut(String, BTreeMap<String, String>),
) -> Outcome {
    let mut delay = polling.initial;
    let mut configured = false;
    let mut waited = Duration::ZERO;
    let mut new_events: Vec<StackEvent> = Vec::new();
    loop {
        if let Ok(events) = retry(polling, || client.stack_events(&stack.name)).await {
            let mut fresh: Vec<StackEvent> = events
                .into_iter()
                .filter(|event| {
                    !seen.borrow().contains(&event.id) && event.status != "REVIEW_IN_PROGRESS"
                })
                .collect();
            fresh.reverse();
            for event in fresh {
                seen.borrow_mut().insert(event.id.clone());
                reporter.report(Progress::Event {
                    stack: stack.name.clone(),
                    event: event.clone(),
                });
                new_events.push(event);
            }
        }
        let current = match retry(polling, || client.stack_state(&stack.name)).await {
            Ok(Some(current)) => current,
            Ok(None) => {
                return Outcome::Failed {
                    status: None,
                    resource: None,
                    reason: "the stack disappeared".into(),
                };
            }
            Err(error) => {
                return Outcome::Failed {
                    status: None,
                    resource: None,
                    reason: error.to_string(),
                };
            }
        };
        // Configured, still stabilising: CloudFormation documents the event may never come, so
        // completion below stays the fallback.
        if !configured
            && current.status.is_in_progress()
            && current.detailed_status.as_deref() == Some("CONFIGURATION_COMPLETE")
            && !current.status.0.contains("ROLLBACK")
            && !current.status.0.starts_with("DELETE")
        {
            configured = true;
            on_configured(current.outputs.clone());
        }
        if !current.status.is_in_progress() && !current.status.is_review() {
            let status = current.status.0.clone();
            if current.status.is_failure() {
                // The operation's own failed events say why first; the stack events are
                // the fallback where DescribeEvents is not answered.
                if let Some(operation) = current.last_operation_id.clone()
                    && let Some((resource, reason)) =
                        root_cause(client, &operation, &stack.name, polling).await
                {
                    return Outcome::Failed {
                        status: Some(status),
                        resource,
                        reason,
                    };
                }
                let first = new_events.iter().find(|event| {
                    event.status.ends_with("_FAILED") && event.logical_id != stack.name
                });
                return Outcome::Failed {
                    status: Some(status),
                    resource: first.map(|event| event.logical_id.clone()),
                    reason: first
                        .and_then(|event| event.reason.clone())
                        .or(current.status_reason)
                        .unwrap_or_else(|| "no reason given".into()),
                };
            }
            settled(current.fingerprint(), current.outputs);
            return Outcome::Applied { status };
        }
        if interrupt.is_raised() {
            return Outcome::Interrupted {
                reason: format!(
                    "stopped waiting while {}; CloudFormation carries on, and the next run waits for it",
                    current.status.0
                ),
            };
        }
        if waited >= polling.timeout {
            return Outcome::Failed {
                status: Some(current.status.0),
                resource: None,
                reason: format!("still in progress after {}s", waited.as_secs()),
            };
        }
        tokio::time::sleep(delay).await;
        waited += delay;
        delay = (delay * 2).min(polling.max);
    }
}

pub(crate) async fn wait_for_change_set<C: CloudFormation>(
    client: &C,
    id: &str,
    polling: Polling,
    interrupt: &Interrupt,
) -> AwsResult<ChangeSetStatus> {
    let mut delay = polling.initial.min(Duration::from_secs(2));
    let mut waited = Duration::ZERO;
    loop {
        let change_set = retry(polling, || client.describe_change_set(id)).await?;
        if change_set.status != ChangeSetStatus::Pending
            || interrupt.is_raised()
            || waited >= polling.timeout
        {
            return Ok(change_set.status);
        }
        tokio::time::sleep(delay).await;
        waited += delay;
        delay = (delay * 2).min(polling.max);
    }
}

async fn remove_leftover_change_sets<C: CloudFormation>(
    client: &C,
    stack: &str,
    polling: Polling,
) -> AwsResult<()> {
    let leftovers = match retry(polling, || client.list_change_sets(stack)).await {
        Ok(leftovers) => leftovers,
        Err(AwsError::NotFound) => return Ok(()),
        Err(error) => return Err(error),
    };
    for change_set in leftovers
        .iter()
        .filter(|name| name.contains(CHANGE_SET_PREFIX))
    {
        retry(polling, || client.delete_change_set(change_set)).await?;
    }
    Ok(())
}

/// Deletes a stack and waits until it is gone (or failed to go, or the wait was stopped).
pub async fn delete_and_wait<C: CloudFormation>(
    client: &C,
    stack: &str,
    polling: Polling,
    interrupt: &Interrupt,
) -> Result<(), Outcome> {
    let fail = |reason: String| Outcome::Failed {
        status: None,
        resource: None,
        reason,
    };
    retry(polling, || client.delete_stack(stack))
        .await
        .map_err(|error| fail(error.to_string()))?;
    let mut delay = polling.initial;
    let mut waited = Duration::ZERO;
    loop {
        match retry(polling, || client.stack_state(stack)).await {
            Ok(None) => return Ok(()),
            Ok(Some(current)) if current.status.0 == "DELETE_COMPLETE" => return Ok(()),
            Ok(Some(current)) if current.status.0 == "DELETE_FAILED" => {
                return Err(fail(format!(
                    "deleting the stack failed: {}",
                    current.status_reason.unwrap_or_default()
                )));
            }
            Ok(Some(_)) => {}
            Err(error) => return Err(fail(error.to_string())),
        }
        if interrupt.is_raised() || waited >= polling.timeout {
            return Err(Outcome::Interrupted {
                reason: "stopped waiting for the stack to be deleted".into(),
            });
        }
        tokio::time::sleep(delay).await;
        waited += delay;
        delay = (delay * 2).min(polling.max);
    }
}

/// A stack policy that denies replacing or deleting the stack's data-bearing resources, except
/// those in `allowed`.
pub fn stack_policy(stack: &StackPlan, allowed: &[&str]) -> String {
    let template = crate::template::Template::parse(&stack.template_body).unwrap_or_default();
    let protected: Vec<String> = template
        .resources
        .iter()
        .filter(|(id, resource)| {
            DATA_BEARING.contains(&resource.resource_type.as_str())
                && !allowed.contains(&id.as_str())
        })
        .map(|(id, _)| format!("LogicalResourceId/{id}"))
        .collect();
    let mut statements = vec![
        serde_json::json!({"Effect": "Allow", "Action": "Update:*", "Principal": "*", "Resource": "*"}),
    ];
    if !protected.is_empty() {
        statements.push(serde_json::json!({
            "Effect": "Deny",
            "Action": ["Update:Replace", "Update:Delete"],
            "Principal": "*",
            "Resource": protected,
        }));
    }
    serde_json::json!({ "Statement": statements }).to_string()
}

/// Retries a call on throttling and connection errors, with exponential backoff.
pub async fn retry<T, F, Fut>(polling: Polling, call: F) -> AwsResult<T>
where
    F: Fn() -> Fut,
    Fut: Future<Output = AwsResult<T>>,
{
    let mut delay = polling.initial.min(Duration::from_secs(1));
    let mut attempt = 1;
    loop {
        match call().await {
            Err(error) if error.is_transient() && attempt < polling.attempts => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(polling.max);
                attempt += 1;
            }
            result => return result,
        }
    }
}
