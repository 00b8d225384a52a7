//! Drift in the plan: the resources drift detection found changed outside CloudFormation
//! (`plan --refresh`), whether this apply touches them, and what a drift-aware apply
//! (`--revert-drift`) puts back; and the change set's pre-deployment validation results.

use serde::{Deserialize, Serialize};

use super::diff::PropertyChange;
use super::{Deployed, Replacement, ResourceAction, ResourcePlan, StackAction, StackPlan};
use crate::aws::ResourceDrift;

/// A resource changed outside CloudFormation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftedResource {
    #[serde(flatten)]
    pub drift: ResourceDrift,
    /// This apply changes the resource anyway: CloudFormation writes the template's values
    /// back over what was changed by hand (without `--revert-drift`, a warning).
    pub touched: bool,
}

/// Puts what was found into the stack's plan.
pub fn attach(stack: &mut StackPlan, deployed: &Deployed) {
    stack.validations = deployed
        .validations
        .get(&stack.name)
        .cloned()
        .unwrap_or_default();
    let Some(drifts) = deployed
        .drift
        .as_ref()
        .and_then(|drift| drift.get(&stack.name))
    else {
        return;
    };
    stack.drift = drifts
        .iter()
        .map(|drift| DriftedResource {
            touched: stack
                .resources
                .iter()
                .any(|resource| resource.logical_id == drift.logical_id),
            drift: drift.clone(),
        })
        .collect();
    let deployed_stack = matches!(stack.action, StackAction::Update | StackAction::NoChange);
    if !(deployed.revert_drift && deployed_stack && !stack.drift.is_empty()) {
        return;
    }
    stack.revert_drift = true;
    if stack.action == StackAction::NoChange {
        stack.action = StackAction::Update;
    }
    if stack.note.is_none() {
        stack.note = Some(format!(
            "puts back {} resource(s) changed outside CloudFormation (--revert-drift)",
            stack.drift.len()
        ));
    }
    for drifted in &mut stack.drift {
        if drifted.touched || drifted.drift.status == "DELETED" {
            continue;
        }
        drifted.touched = true;
        stack.resources.push(ResourcePlan {
            logical_id: drifted.drift.logical_id.clone(),
            moved_from: None,
            resource_type: drifted.drift.resource_type.clone(),
            action: ResourceAction::Modify,
            replacement: Replacement::No,
            replaced_by: Vec::new(),
            dangerous: false,
            changes: drifted
                .drift
                .differences
                .iter()
                .map(|difference| PropertyChange {
                    path: difference.path.trim_start_matches('/').replace('/', "."),
                    before: difference.actual.clone().map(value),
                    after: difference.expected.clone().map(value),
                })
                .collect(),
            steps: Vec::new(),
            broadening: None,
            notes: vec!["changed outside CloudFormation; this apply puts it back".into()],
        });
    }
}

/// A drift value as the plan shows it: CloudFormation reports JSON text; a number or a
/// document stays one.
fn value(text: String) -> serde_json::Value {
    serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
}
