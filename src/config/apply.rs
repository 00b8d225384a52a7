//! The `apply` section: when a stack's dependents may start. CloudFormation marks a stack
//! `CONFIGURATION_COMPLETE` once every resource is configured, before the eventual-consistency
//! checks that end in `*_COMPLETE`; starting dependents then saves that wait, at the cost of
//! a dependent running against a stack that may still fail its checks. Protected environments
//! always wait for completion.
//! <https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stack-resource-configuration-complete.html>

use serde::Serialize;

use super::environment::Problem;
use super::raw::RawApply;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StartDependents {
    /// When the stack's detailed status is `CONFIGURATION_COMPLETE` (and the outputs they
    /// read are there); at completion where CloudFormation does not report it.
    AtConfigurationComplete,
    /// When the stack is `*_COMPLETE`.
    AtComplete,
}

#[derive(Debug, Clone, Serialize)]
pub struct Apply {
    pub start_dependents: StartDependents,
}

pub(super) fn validate_apply(raw: RawApply, protected: bool, problems: &mut Vec<Problem>) -> Apply {
    let start_dependents = match raw.start_dependents_at.as_deref() {
        None if protected => StartDependents::AtComplete,
        None | Some("configuration_complete") => StartDependents::AtConfigurationComplete,
        Some("complete") => StartDependents::AtComplete,
        Some(other) => {
            problems.push(
                Problem::new(
                    "apply.start_dependents_at",
                    format!("`{other}` is neither `configuration_complete` nor `complete`"),
                )
                .hint("`configuration_complete` starts dependents early; `complete` waits for the stack"),
            );
            StartDependents::AtComplete
        }
    };
    if protected && start_dependents == StartDependents::AtConfigurationComplete {
        problems.push(
            Problem::new(
                "apply.start_dependents_at",
                "a protected environment's dependents wait until each stack is complete",
            )
            .hint("remove the key, or set it to `complete`"),
        );
    }
    Apply { start_dependents }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_environments_wait_for_completion() {
        let mut problems = Vec::new();
        let open = validate_apply(RawApply::default(), false, &mut problems);
        let protected = validate_apply(RawApply::default(), true, &mut problems);
        assert_eq!(
            (open.start_dependents, protected.start_dependents),
            (
                StartDependents::AtConfigurationComplete,
                StartDependents::AtComplete
            )
        );
        assert!(problems.is_empty());
        let early = RawApply {
            start_dependents_at: Some("configuration_complete".into()),
        };
        validate_apply(early, true, &mut problems);
        let typo = RawApply {
            start_dependents_at: Some("configured".into()),
        };
        validate_apply(typo, false, &mut problems);
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            ["apply.start_dependents_at", "apply.start_dependents_at"]
        );
    }
}
