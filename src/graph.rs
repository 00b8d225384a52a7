//! The stack dependency graph: a stack depends on every stack whose outputs it consumes, on
//! the stack creating the service role it is deployed through, and on the stack creating a
//! bucket apply uploads its template or assets to before its change set.
//! It yields launch batches (stacks in a batch are independent) or names a cycle.

use std::collections::BTreeSet;

use crate::render::RenderedStack;
use crate::stacks::DEPLOY_ROLE_STACK;

/// Stacks in launch order, grouped into batches of stacks that do not depend on each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    /// Stack ids, in the order they were declared.
    pub ids: Vec<String>,
    /// `dependencies[i]`: indices of the stacks stack `i` consumes outputs from.
    pub dependencies: Vec<BTreeSet<usize>>,
}

/// A dependency cycle, as stack ids: `[a, b, a]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle(pub Vec<String>);

impl std::fmt::Display for Cycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.join(" → "))
    }
}

impl Graph {
    /// Builds the graph; inputs naming unknown stacks are left to `validate` to report.
    pub fn new(stacks: &[RenderedStack]) -> Graph {
        let ids: Vec<String> = stacks.iter().map(|stack| stack.spec.id.clone()).collect();
        // Bucket name → the stack whose template creates it.
        let creators: std::collections::BTreeMap<&str, usize> = stacks
            .iter()
            .enumerate()
            .flat_map(|(index, stack)| {
                stack
                    .template
                    .resources
                    .values()
                    .filter(|resource| resource.resource_type == "AWS::S3::Bucket")
                    .filter_map(
                        move |resource| match resource.properties.get("BucketName") {
                            Some(crate::template::Node::String(name)) => {
                                Some((name.as_str(), index))
                            }
                            _ => None,
                        },
                    )
            })
            .collect();
        let dependencies = stacks
            .iter()
            .enumerate()
            .map(|(own, stack)| {
                let uploads: Vec<usize> = stack
                    .upload_buckets()
                    .into_iter()
                    .filter_map(|bucket| creators.get(bucket).copied())
                    .filter(|&creator| creator != own)
                    .collect();
                // A stack deployed through the service role waits for the stack creating it.
                let role_stack = stack
                    .deploy_role
                    .as_ref()
                    .and_then(|_| ids.iter().position(|id| id == DEPLOY_ROLE_STACK));
                stack
                    .inputs
                    .iter()
                    .filter_map(|input| ids.iter().position(|id| *id == input.stack))
                    .chain(role_stack)
                    .chain(uploads)
                    .collect()
            })
            .collect();
        Graph { ids, dependencies }
    }

    /// Launch batches: every stack comes after all the stacks it depends on.
    pub fn batches(&self) -> Result<Vec<Vec<String>>, Cycle> {
        let mut done = vec![false; self.ids.len()];
        let mut batches = Vec::new();
        while done.iter().any(|finished| !finished) {
            let ready: Vec<usize> = (0..self.ids.len())
                .filter(|&index| {
                    !done[index]
                        && self.dependencies[index]
                            .iter()
                            .all(|&dependency| done[dependency])
                })
                .collect();
            if ready.is_empty() {
                return Err(self.find_cycle(&done));
            }
            for &index in &ready {
                done[index] = true;
            }
            batches.push(
                ready
                    .into_iter()
                    .map(|index| self.ids[index].clone())
                    .collect(),
            );
        }
        Ok(batches)
    }

    /// Walks dependencies from an unfinished stack until one repeats.
    fn find_cycle(&self, done: &[bool]) -> Cycle {
        let start = done
            .iter()
            .position(|finished| !finished)
            .unwrap_or_default();
        let mut path = vec![start];
        let mut current = start;
        loop {
            let Some(&next) = self.dependencies[current]
                .iter()
                .find(|&&dependency| !done[dependency])
            else {
                return Cycle(path.iter().map(|&index| self.ids[index].clone()).collect());
            };
            if let Some(position) = path.iter().position(|&index| index == next) {
                let mut cycle: Vec<String> = path[position..]
                    .iter()
                    .map(|&index| self.ids[index].clone())
                    .collect();
                cycle.push(self.ids[next].clone());
                return Cycle(cycle);
            }
            path.push(next);
            current = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> Graph {
        let ids: Vec<String> = edges.iter().map(|(id, _)| id.to_string()).collect();
        let dependencies = edges
            .iter()
            .map(|(_, deps)| {
                deps.iter()
                    .map(|dep| ids.iter().position(|id| id == dep).expect("known"))
                    .collect()
            })
            .collect();
        Graph { ids, dependencies }
    }

    #[test]
    fn batches_follow_dependencies() {
        let graph = graph(&[
            ("iam", &["storage"]),
            ("storage", &[]),
            ("registry", &[]),
            ("pipeline", &["iam", "registry"]),
        ]);
        assert_eq!(
            graph.batches().expect("acyclic"),
            vec![vec!["storage", "registry"], vec!["iam"], vec!["pipeline"]]
        );
    }

    #[test]
    fn a_cycle_is_named() {
        let graph = graph(&[
            ("storage", &[]),
            ("a", &["b"]),
            ("b", &["c"]),
            ("c", &["a"]),
        ]);
        assert_eq!(
            graph.batches().expect_err("cycle").to_string(),
            "a → b → c → a"
        );
    }
}
