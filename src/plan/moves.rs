//! Resources that move between stacks. A stack an earlier layout had (`stacks::RETIRED`) may
//! still hold resources that a current stack declares under the same name: the model package
//! groups of the old `registry` stack, now each in its model's pipeline stack. Creating them
//! again would fail (the names are taken) and deleting them would lose the model versions, so
//! apply moves them with CloudFormation stack refactoring, kept as they are, then deletes the
//! retired stack once nothing is left in it.

use serde::{Deserialize, Serialize};

use crate::aws::DeployedStack;
use crate::render::RenderedStack;
use crate::template::Template;

use super::{Named, named};

/// Stacks one stack refactor may involve (CloudFormation User Guide, "Stack refactoring": "a
/// maximum of 5 stacks"): the retired stack and up to four destinations.
pub const MAX_REFACTOR_STACKS: usize = 5;

/// One resource moving from a retired stack into a current one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    pub from_logical_id: String,
    /// The destination's stack id (`pipeline-plants`) and name.
    pub to_stack: String,
    pub to_stack_name: String,
    pub to_logical_id: String,
    pub resource_type: String,
    /// The name that identifies it (the model package group's name).
    pub name: String,
}

/// A deployed stack the layout no longer has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiredStack {
    pub id: String,
    pub name: String,
    pub fingerprint: String,
    pub status: String,
    /// Why nothing can move now (an operation running, a failed rollback).
    pub blocked: Option<String>,
    pub moves: Vec<Move>,
    /// Resources no current stack declares: they stay, and so does the stack.
    pub left: Vec<String>,
    /// Its template as deployed, what the refactor starts from.
    pub template_body: String,
}

impl RetiredStack {
    /// Everything moves out: apply deletes the stack afterwards.
    pub fn emptied(&self) -> bool {
        self.left.is_empty() && !self.moves.is_empty()
    }

    /// The refactors apply runs, in order: each moves into up to four destination stacks.
    pub fn batches(&self) -> Vec<Vec<&Move>> {
        let mut destinations: Vec<&str> = Vec::new();
        for found in &self.moves {
            if !destinations.contains(&found.to_stack.as_str()) {
                destinations.push(&found.to_stack);
            }
        }
        destinations
            .chunks(MAX_REFACTOR_STACKS - 1)
            .map(|chunk| {
                self.moves
                    .iter()
                    .filter(|found| chunk.contains(&found.to_stack.as_str()))
                    .collect()
            })
            .collect()
    }
}

/// The retired stacks that are deployed, with what moves out of each into `rendered`.
pub fn retired(
    deployed: &std::collections::BTreeMap<String, (String, DeployedStack)>,
    rendered: &[RenderedStack],
) -> Vec<RetiredStack> {
    deployed
        .values()
        .map(|(id, stack)| {
            let template = Template::parse(&stack.template_body).unwrap_or_default();
            let mut moves = Vec::new();
            let mut left = Vec::new();
            for (logical_id, resource) in &template.resources {
                let destination = named(resource).and_then(|identity| {
                    rendered.iter().find_map(|current| {
                        current
                            .template
                            .resources
                            .iter()
                            .find(|(_, declared)| named(declared).as_ref() == Some(&identity))
                            .map(|(to_id, _)| (current, to_id.clone(), identity.clone()))
                    })
                });
                match destination {
                    Some((
                        current,
                        to_logical_id,
                        Named {
                            resource_type,
                            name,
                        },
                    )) => moves.push(Move {
                        from_logical_id: logical_id.clone(),
                        to_stack: current.spec.id.clone(),
                        to_stack_name: current.spec.name.clone(),
                        to_logical_id,
                        resource_type,
                        name,
                    }),
                    None => left.push(logical_id.clone()),
                }
            }
            let blocked = if stack.status.is_in_progress() {
                Some(format!(
                    "another operation is running ({}); wait for it to finish",
                    stack.status.0
                ))
            } else if stack.status.needs_continue_rollback() {
                Some("its last update failed to roll back (UPDATE_ROLLBACK_FAILED)".into())
            } else {
                None
            };
            RetiredStack {
                id: id.clone(),
                name: stack.name.clone(),
                fingerprint: stack.fingerprint(),
                status: stack.status.0.clone(),
                blocked,
                moves,
                left,
                template_body: stack.template_body.clone(),
            }
        })
        .filter(|retired| !retired.moves.is_empty())
        .collect()
}

/// The names the retired stacks hold: they exist, but inside a stack, so they are not
/// "outside any stack" for the plan's notes.
pub fn held(deployed: &std::collections::BTreeMap<String, (String, DeployedStack)>) -> Vec<Named> {
    deployed
        .values()
        .flat_map(|(_, stack)| {
            Template::parse(&stack.template_body)
                .unwrap_or_default()
                .resources
                .values()
                .filter_map(named)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moving(destinations: usize) -> RetiredStack {
        RetiredStack {
            id: "registry".into(),
            name: "p-registry".into(),
            fingerprint: String::new(),
            status: "UPDATE_COMPLETE".into(),
            blocked: None,
            moves: (0..destinations)
                .map(|index| Move {
                    from_logical_id: format!("M{index}ModelPackageGroup"),
                    to_stack: format!("pipeline-m{index}"),
                    to_stack_name: format!("p-pipeline-m{index}"),
                    to_logical_id: "ModelPackageGroup".into(),
                    resource_type: "AWS::SageMaker::ModelPackageGroup".into(),
                    name: format!("p-m{index}"),
                })
                .collect(),
            left: Vec::new(),
            template_body: String::new(),
        }
    }

    #[test]
    fn a_refactor_holds_the_retired_stack_and_four_destinations() {
        let sizes: Vec<usize> = moving(9).batches().iter().map(Vec::len).collect();
        assert_eq!(sizes, [4, 4, 1]);
        assert_eq!(moving(4).batches().len(), 1);
        assert!(moving(0).batches().is_empty());
    }

    #[test]
    fn a_stack_is_deleted_only_when_everything_moves_out() {
        let mut retired = moving(2);
        assert!(retired.emptied());
        retired.left.push("Kept".into());
        assert!(!retired.emptied());
    }
}
