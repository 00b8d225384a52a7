//! Drift and operation events: what tests change "by hand" outside CloudFormation
//! (`drift_resource`), drift detections that see it, drift-aware (`REVERT_DRIFT`) change sets
//! that put it back, pre-deployment validation results a test sets per stack, and each
//! stack operation's events for `DescribeEvents`.

use std::collections::BTreeMap;

use crate::aws::{
    AwsError, AwsResult, DriftDetection, EventSource, OperationEvent, ResourceDrift, Validation,
};

use super::events::{STACK_TYPE, uuid};
use super::stacks::find_live;
use super::{FakeCloudFormation, State};

/// What the fake keeps about drift and validation.
#[derive(Debug, Default)]
pub(super) struct DriftState {
    /// By stack name: resources as changed outside CloudFormation (what a detection finds).
    pub(super) actual: BTreeMap<String, Vec<ResourceDrift>>,
    /// By detection id: the stack and what the detection found.
    pub(super) detections: BTreeMap<String, (String, Vec<ResourceDrift>)>,
    /// By stack name: the latest detection's findings.
    pub(super) latest: BTreeMap<String, Vec<ResourceDrift>>,
    /// By stack name: the validation results its change sets get.
    pub(super) validations: BTreeMap<String, Vec<Validation>>,
    /// By change set id: the validation results it got.
    pub(super) change_set_validations: BTreeMap<String, Vec<Validation>>,
    /// Stacks whose drift-aware change set ran, in order.
    pub(super) reverted: Vec<String>,
}

impl FakeCloudFormation {
    /// Someone changed a resource of `stack` outside CloudFormation.
    pub fn drift_resource(&self, stack: &str, drift: ResourceDrift) {
        self.lock()
            .drift
            .actual
            .entry(stack.to_string())
            .or_default()
            .push(drift);
    }

    /// The pre-deployment validation results of every change set of `stack` from now on.
    pub fn set_validations(&self, stack: &str, validations: Vec<Validation>) {
        self.lock()
            .drift
            .validations
            .insert(stack.to_string(), validations);
    }

    /// Stacks a drift-aware change set was executed on, in order.
    pub fn reverted(&self) -> Vec<String> {
        self.lock().drift.reverted.clone()
    }
}

impl State {
    pub(super) fn detect_drift(&mut self, stack: &str) -> AwsResult<String> {
        let name = find_live(&mut self.stacks, stack)
            .map(|stack| stack.name.clone())
            .ok_or_else(|| AwsError::Validation(format!("Stack [{stack}] does not exist")))?;
        let found = self.drift.actual.get(&name).cloned().unwrap_or_default();
        let id = uuid(self.clock.unique());
        self.drift.latest.insert(name.clone(), found.clone());
        self.drift.detections.insert(id.clone(), (name, found));
        Ok(id)
    }

    pub(super) fn drift_detection(&self, id: &str) -> AwsResult<DriftDetection> {
        self.drift
            .detections
            .get(id)
            .map(|_| DriftDetection::Complete)
            .ok_or_else(|| AwsError::Validation(format!("Drift detection {id} does not exist")))
    }

    pub(super) fn resource_drifts(&mut self, stack: &str) -> AwsResult<Vec<ResourceDrift>> {
        let name = find_live(&mut self.stacks, stack)
            .map(|stack| stack.name.clone())
            .ok_or_else(|| AwsError::Validation(format!("Stack [{stack}] does not exist")))?;
        Ok(self.drift.latest.get(&name).cloned().unwrap_or_default())
    }

    /// A change set's validation results, fixed when it is created.
    pub(super) fn record_validations(&mut self, stack: &str, change_set: &str) {
        if let Some(validations) = self.drift.validations.get(stack) {
            self.drift
                .change_set_validations
                .insert(change_set.to_string(), validations.clone());
        }
    }

    /// A drift-aware change set ran: the stack's resources are as the template says again.
    pub(super) fn revert_drift(&mut self, stack: &str) {
        self.drift.actual.remove(stack);
        self.drift.reverted.push(stack.to_string());
    }

    pub(super) fn operation_events(
        &self,
        source: &EventSource,
        failed_only: bool,
    ) -> AwsResult<Vec<OperationEvent>> {
        let events: Vec<OperationEvent> = match source {
            EventSource::ChangeSet(id) => self
                .drift
                .change_set_validations
                .get(id)
                .into_iter()
                .flatten()
                .map(|validation| OperationEvent {
                    event_type: "VALIDATION_ERROR".into(),
                    timestamp: String::new(),
                    logical_id: None,
                    resource_type: None,
                    status: None,
                    reason: None,
                    validation: Some(validation.clone()),
                })
                .collect(),
            EventSource::Operation(id) => {
                let stack = self
                    .stacks
                    .values()
                    .chain(self.deleted.iter())
                    .find(|stack| stack.operation.as_ref().is_some_and(|(op, _)| op == id))
                    .ok_or_else(|| {
                        AwsError::Validation(format!("Operation {id} does not exist"))
                    })?;
                let start = stack.operation.as_ref().map_or(0, |(_, start)| *start);
                stack.events[start.min(stack.events.len())..]
                    .iter()
                    .map(|event| {
                        let stack_level = event.resource_type == STACK_TYPE;
                        let failed = event.status.ends_with("_FAILED");
                        OperationEvent {
                            event_type: match (stack_level, failed) {
                                (true, _) => "STACK_EVENT",
                                (false, true) => "PROVISIONING_ERROR",
                                (false, false) => "PROGRESS_EVENT",
                            }
                            .into(),
                            timestamp: event.timestamp.clone(),
                            logical_id: Some(event.logical_id.clone()),
                            resource_type: Some(event.resource_type.clone()),
                            status: Some(event.status.clone()),
                            reason: event.reason.clone(),
                            validation: None,
                        }
                    })
                    .collect()
            }
        };
        Ok(events
            .into_iter()
            .filter(|event: &OperationEvent| {
                !failed_only
                    || event.validation.is_some()
                    || event
                        .status
                        .as_deref()
                        .is_some_and(|status| status.ends_with("_FAILED"))
            })
            .collect())
    }
}
