//! Reads what is deployed, through the AWS boundary, for `plan`: every stack of the
//! environment (concurrently, bounded), and for each stack the structural diff says will
//! update, a change set that is described for its authoritative resource list and deleted
//! again — a plan never leaves a change set behind.

use std::collections::{BTreeMap, BTreeSet};

use futures::stream::{self, StreamExt, TryStreamExt};

use crate::apply::{CHANGE_SET_PREFIX, Polling, retry};
use crate::aws::{
    AwsResult, ChangeSetKind, ChangeSetRequest, ChangeSetStatus, CloudFormation, DriftDetection,
    EventSource, ResourceDrift, TemplateSource, Validation,
};
use crate::config::Environment;
use crate::deployed_record::Record;
use crate::plan::{self, Deployed, Plan, StackAction};
use crate::render::RenderedStack;
use crate::validate::MAX_INLINE_BODY;

/// How many stacks are read at once. The AWS CDK's CLI reads 20 stack templates at once
/// (aws/aws-cdk-cli#927, which bounded it after CloudFormation throttled an unbounded read of
/// many stacks); CloudFormation's rates are not published, and a throttled read is retried
/// with backoff (`apply::retry`, after the SDK's own retries).
pub const CONCURRENCY: usize = 16;

/// How many drift detections run at once (each keeps CloudFormation checking every resource of
/// its stack for a while).
const DRIFT_CONCURRENCY: usize = 8;

/// Reads the deployed stacks of `rendered`. A stack whose state and rendered template are
/// those `record` holds is read with `DescribeStacks` alone: its template is the rendered one.
/// What was read goes into `Deployed::record`, for apply to save.
pub async fn read<C: CloudFormation>(
    client: &C,
    rendered: &[RenderedStack],
    record: &Record,
    polling: Polling,
) -> AwsResult<Deployed> {
    let stacks: Vec<_> = stream::iter(rendered.iter().map(|stack| {
        let name = stack.spec.name.clone();
        async move {
            let found = if record.may_hold(&name, &stack.body) {
                match retry(polling, || client.stack_state(&name)).await? {
                    Some(mut state) if record.holds(&state, &stack.body) => {
                        state.template_body = stack.body.clone();
                        Some(state)
                    }
                    Some(state) if state.status.is_review() => Some(state),
                    // Changed since (or never recorded in this state): read it all again, the
                    // state first, so the template read is never older than the state.
                    Some(_) => retry(polling, || client.describe_stack(&name)).await?,
                    None => None,
                }
            } else {
                retry(polling, || client.describe_stack(&name)).await?
            };
            Ok::<_, crate::aws::AwsError>((name, found))
        }
    }))
    .buffer_unordered(CONCURRENCY)
    .try_collect()
    .await?;
    let mut seen = Record::new();
    for (_, stack) in &stacks {
        if let Some(stack) = stack.as_ref().filter(|stack| !stack.status.is_review()) {
            seen.note(stack, &stack.template_body);
        }
    }
    Ok(Deployed {
        stacks: stacks
            .into_iter()
            .filter_map(|(name, found)| found.map(|stack| (name, stack)))
            .collect(),
        record: seen,
        ..Deployed::default()
    })
}

/// The environment's record of deployed templates; empty when there is none yet (or it cannot
/// be read: the plan then reads every template, as without one).
pub async fn read_record<C: CloudFormation>(
    client: &C,
    environment: &Environment,
    polling: Polling,
) -> Record {
    let key = crate::deployed_record::key(&environment.prefix());
    match retry(polling, || {
        client.read_object(&environment.storage.artifacts_bucket_name, &key)
    })
    .await
    {
        Ok(Some(bytes)) => Record::parse(&bytes),
        Ok(None) | Err(_) => Record::new(),
    }
}

/// The deployed stacks of `stacks::RETIRED`, by name, with their id.
pub async fn read_retired<C: CloudFormation>(
    client: &C,
    environment: &Environment,
    polling: Polling,
) -> AwsResult<BTreeMap<String, (String, crate::aws::DeployedStack)>> {
    let mut found = BTreeMap::new();
    for id in crate::stacks::RETIRED {
        let name = format!("{}-{id}", environment.prefix());
        if let Some(stack) = retry(polling, || client.describe_stack(&name)).await?
            && stack.status.0 != "DELETE_COMPLETE"
        {
            found.insert(name, (id.to_string(), stack));
        }
    }
    Ok(found)
}

/// What `plan` also asks CloudFormation: drift detection on the deployed stacks
/// (`--refresh`), and drift-aware change sets (`--revert-drift`, which needs the drift).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refresh {
    pub drift: bool,
    pub revert_drift: bool,
}

/// Runs drift detection on each of `stacks` (concurrently, bounded; one detection per stack,
/// as CloudFormation allows) and reads the drifted resources of each.
pub async fn detect_drift<C: CloudFormation>(
    client: &C,
    stacks: &[String],
    polling: Polling,
) -> AwsResult<BTreeMap<String, Vec<ResourceDrift>>> {
    stream::iter(stacks.iter().map(|name| async move {
        let id = retry(polling, || client.detect_drift(name)).await?;
        let mut delay = polling.initial.min(std::time::Duration::from_secs(2));
        // A detection that could not check everything still reports what it found.
        while let DriftDetection::Running = retry(polling, || client.drift_detection(&id)).await? {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(polling.max);
        }
        let drifts = retry(polling, || client.resource_drifts(name)).await?;
        Ok::<_, crate::aws::AwsError>((name.clone(), drifts))
    }))
    .buffer_unordered(DRIFT_CONCURRENCY)
    .try_collect()
    .await
}

/// A change set's pre-deployment validation results; none where CloudFormation does not
/// report them (`DescribeEvents` unavailable).
async fn validations<C: CloudFormation>(client: &C, id: &str, polling: Polling) -> Vec<Validation> {
    let source = EventSource::ChangeSet(id.to_string());
    retry(polling, || client.operation_events(&source, false))
        .await
        .map(|events| {
            events
                .into_iter()
                .filter_map(|event| event.validation)
                .collect()
        })
        .unwrap_or_default()
}

/// Plans against `deployed` (from [`read`]): reads the retired stacks, computes the plan, and
/// for stacks with changes asks CloudFormation for a change set to confirm which resources
/// change and which are replaced, then plans again with that. `change_set_name` is injected
/// (tests use a fixed one).
#[allow(clippy::too_many_arguments)]
pub async fn plan<C: CloudFormation>(
    client: &C,
    environment: &Environment,
    rendered: &[RenderedStack],
    deployed: Deployed,
    serving: BTreeMap<String, crate::release::serving::Resolved>,
    polling: Polling,
    change_set_name: &str,
    refresh: Refresh,
) -> AwsResult<Plan> {
    let mut deployed = deployed;
    deployed.retired = read_retired(client, environment, polling).await?;
    deployed.serving = serving;
    if refresh.drift || refresh.revert_drift {
        let names: Vec<String> = deployed
            .stacks
            .iter()
            .filter(|(_, stack)| stack.status.is_complete() && !stack.status.needs_recreate())
            .map(|(name, _)| name.clone())
            .collect();
        deployed.drift = Some(detect_drift(client, &names, polling).await?);
        deployed.revert_drift = refresh.revert_drift;
    }
    let first = plan::plan(environment, rendered, &deployed);
    deployed.assets_present = present_assets(client, &first, polling).await?;
    // Names a retired stack holds move in (plan::moves): they are in a stack, not loose.
    let held = plan::moves::held(&deployed.retired);
    let to_check: Vec<plan::Named> = plan::named_to_create(&first, rendered)
        .into_iter()
        .filter(|named| !held.contains(named))
        .collect();
    let found: Vec<(plan::Named, bool)> =
        stream::iter(to_check.into_iter().map(|named| async move {
            retry(polling, || client.named_resource_exists(&named))
                .await
                .map(|exists| (named, exists))
        }))
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    deployed.existing.extend(
        found
            .into_iter()
            .filter_map(|(named, exists)| exists.then_some(named)),
    );
    let updates: Vec<_> = first
        .stacks
        .iter()
        .filter(|stack| stack.action == StackAction::Update)
        .filter(|stack| stack.template_body.len() <= MAX_INLINE_BODY)
        .collect();
    let results: Vec<_> = stream::iter(updates.into_iter().map(|stack| {
        let deployed = &deployed;
        async move {
            let current = &deployed.stacks[&stack.name];
            // Values known only after an upstream apply keep their deployed value here: the
            // change set is a preview of the template change.
            let parameters = stack
                .parameters
                .iter()
                .filter_map(|parameter| {
                    let value = parameter
                        .value
                        .clone()
                        .or_else(|| current.parameters.get(&parameter.name).cloned())?;
                    Some((parameter.name.clone(), value))
                })
                .collect();
            let request = ChangeSetRequest {
                stack_name: stack.name.clone(),
                change_set_name: change_set_name.to_string(),
                kind: ChangeSetKind::Update,
                template: TemplateSource::Body(stack.template_body.clone()),
                parameters,
                tags: stack.tags.clone(),
                capabilities: stack.capabilities.clone(),
                role_arn: None,
                description: "mlops-infra plan preview (deleted right after)".into(),
                rollback: None,
                revert_drift: refresh.revert_drift,
            };
            let id = retry(polling, || client.create_change_set(&request)).await?;
            let described = loop {
                let described = retry(polling, || client.describe_change_set(&id)).await;
                match described {
                    Ok(change_set) if change_set.status == ChangeSetStatus::Pending => {
                        tokio::time::sleep(polling.initial.min(std::time::Duration::from_secs(2)))
                            .await;
                    }
                    other => break other,
                }
            };
            let checks = validations(client, &id, polling).await;
            let deleted = retry(polling, || client.delete_change_set(&id)).await;
            let change_set = described?;
            deleted?;
            Ok::<_, crate::aws::AwsError>((stack.name.clone(), change_set, checks))
        }
    }))
    .buffer_unordered(CONCURRENCY)
    .try_collect()
    .await?;
    for (name, change_set, checks) in results {
        if !checks.is_empty() {
            deployed.validations.insert(name.clone(), checks);
        }
        match change_set.status {
            ChangeSetStatus::Ready => {
                deployed.change_sets.insert(name, change_set.changes);
            }
            // Nothing CloudFormation would change (e.g. only formatting differs).
            ChangeSetStatus::NoChanges => {
                deployed.unchanged.insert(name);
            }
            _ => {}
        }
    }
    Ok(plan::plan(environment, rendered, &deployed))
}

/// The assets of the stacks apply would touch that are already in S3. Stacks share assets
/// (every pipeline runs the same step code), so each object is checked once.
async fn present_assets<C: CloudFormation>(
    client: &C,
    plan: &Plan,
    polling: Polling,
) -> AwsResult<BTreeSet<String>> {
    let assets: BTreeMap<String, &crate::render::Asset> = plan
        .stacks
        .iter()
        .filter(|stack| stack.action != StackAction::NoChange)
        .flat_map(|stack| &stack.assets)
        .map(|asset| (asset.uri(), asset))
        .collect();
    let found: Vec<(String, bool)> =
        stream::iter(assets.into_iter().map(|(uri, asset)| async move {
            retry(polling, || client.object_exists(&asset.bucket, &asset.key))
                .await
                .map(|exists| (uri, exists))
        }))
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    Ok(found
        .into_iter()
        .filter_map(|(uri, exists)| exists.then_some(uri))
        .collect())
}

/// The prefix every change set of this tool carries, with a time-based suffix.
pub fn change_set_name(unix_millis: u128) -> String {
    format!("{CHANGE_SET_PREFIX}{unix_millis}")
}
