//! Stack refactoring: resources move between stacks, kept as they are (same physical id, same
//! resolved properties). Refused as the CloudFormation User Guide ("Stack refactoring")
//! documents: at most 5 stacks (the API takes one; two is the console's minimum); no resource created, deleted or changed; parameters, conditions
//! and mappings unchanged; no stack left empty; a missing stack only with stack creation
//! enabled. The refactor is validated when created and applied when executed.

use std::collections::{BTreeMap, BTreeSet};

use indexmap::IndexMap;

use crate::aws::{AwsError, AwsResult, RefactorRequest, RefactorState};
use crate::template::Template;

use super::events::uuid;
use super::stacks::{DeployedResource, Stack};
use super::{ACCOUNT_ID, REGION, State};

/// Where each resource goes: (stack, logical id) at its destination → (stack, logical id) it
/// came from.
type Moves = BTreeMap<(String, String), (String, String)>;

#[derive(Debug, Clone)]
pub(super) struct StoredRefactor {
    id: String,
    /// Stack name → its template after the refactor (text, parsed).
    stacks: Vec<(String, String, Template)>,
    /// Destination (stack, logical id) → source (stack, logical id).
    moves: Moves,
    state: RefactorState,
    /// The stacks' versions when validated: a stack changed since makes it obsolete.
    versions: BTreeMap<String, u64>,
}

impl State {
    pub(super) fn create_stack_refactor(&mut self, request: &RefactorRequest) -> AwsResult<String> {
        // "a maximum of 5 stacks (using the AWS CLI)"; the minimum of 2 is the console's.
        if !(1..=5).contains(&request.stacks.len()) {
            return Err(AwsError::Validation(
                "a stack refactor involves 1 to 5 stacks".into(),
            ));
        }
        let id = format!(
            "arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stackRefactor/{}",
            uuid(self.clock.unique())
        );
        let mut stacks = Vec::new();
        for (name, source) in &request.stacks {
            let body = self.template_body(source)?;
            let template = Template::parse(&body)
                .map_err(|error| AwsError::Validation(format!("template of {name}: {error}")))?;
            stacks.push((name.clone(), body, template));
        }
        let state = match self.validate_refactor(request, &stacks) {
            Ok(moves) => {
                let versions = stacks
                    .iter()
                    .filter_map(|(name, _, _)| Some((name.clone(), self.stacks.get(name)?.version)))
                    .collect();
                self.refactors.push(StoredRefactor {
                    id: id.clone(),
                    stacks,
                    moves,
                    state: RefactorState::Ready,
                    versions,
                });
                return Ok(id);
            }
            Err(reason) => RefactorState::Failed(reason),
        };
        self.refactors.push(StoredRefactor {
            id: id.clone(),
            stacks,
            moves: BTreeMap::new(),
            state,
            versions: BTreeMap::new(),
        });
        Ok(id)
    }

    /// Which resource each new location holds, or why the refactor is refused.
    fn validate_refactor(
        &self,
        request: &RefactorRequest,
        stacks: &[(String, String, Template)],
    ) -> Result<Moves, String> {
        let mut before: BTreeMap<(String, String), crate::template::Resource> = BTreeMap::new();
        for (name, _, template) in stacks {
            match self.stacks.get(name) {
                Some(stack) => {
                    let deployed = stack.template.clone().unwrap_or_default();
                    if deployed.parameters != template.parameters
                        || deployed.conditions != template.conditions
                        || deployed.mappings != template.mappings
                    {
                        return Err(format!(
                            "stack {name}: parameters, conditions and mappings cannot change in a refactor"
                        ));
                    }
                    for (logical_id, resource) in deployed.resources {
                        before.insert((name.clone(), logical_id), resource);
                    }
                }
                None if request.enable_stack_creation => {}
                None => return Err(format!("stack {name} does not exist")),
            }
            if template.resources.is_empty() {
                return Err(format!(
                    "stack {name} would be left empty: CloudFormation doesn't support empty stacks"
                ));
            }
        }
        let mapped: Moves = request
            .mappings
            .iter()
            .map(|(from_stack, from_id, to_stack, to_id)| {
                (
                    (to_stack.clone(), to_id.clone()),
                    (from_stack.clone(), from_id.clone()),
                )
            })
            .collect();
        let mut moves = BTreeMap::new();
        let mut claimed: BTreeSet<(String, String)> = BTreeSet::new();
        for (name, _, template) in stacks {
            for (logical_id, resource) in &template.resources {
                let here = (name.clone(), logical_id.clone());
                let origin = if let Some(origin) = mapped.get(&here) {
                    origin.clone()
                } else if before.contains_key(&here) {
                    here.clone()
                } else {
                    // The same logical id leaving another stack of the refactor.
                    let elsewhere: Vec<_> = before
                        .keys()
                        .filter(|(stack, id)| id == logical_id && stack != name)
                        .cloned()
                        .collect();
                    match elsewhere.as_slice() {
                        [origin] => origin.clone(),
                        _ => {
                            return Err(format!(
                                "resource {logical_id} in {name} is new: a refactor cannot create resources"
                            ));
                        }
                    }
                };
                let Some(was) = before.get(&origin) else {
                    return Err(format!(
                        "the mapping for {logical_id} in {name} names {}/{}, which does not exist",
                        origin.0, origin.1
                    ));
                };
                if !claimed.insert(origin.clone()) {
                    return Err(format!(
                        "{}/{} is refactored into more than one place",
                        origin.0, origin.1
                    ));
                }
                if was.resource_type != resource.resource_type
                    || was.properties != resource.properties
                    || was.deletion_policy != resource.deletion_policy
                    || was.update_replace_policy != resource.update_replace_policy
                {
                    return Err(format!(
                        "resource {logical_id} in {name} differs from {}/{}: a refactor cannot change resources",
                        origin.0, origin.1
                    ));
                }
                if origin != here {
                    moves.insert(here, origin);
                }
            }
        }
        if let Some((stack, id)) = before.keys().find(|key| !claimed.contains(*key)) {
            return Err(format!(
                "resource {id} of {stack} is missing: a refactor cannot delete resources"
            ));
        }
        Ok(moves)
    }

    pub(super) fn stack_refactor(&mut self, id: &str) -> AwsResult<RefactorState> {
        let versions = self
            .stacks
            .iter()
            .map(|(name, stack)| (name.clone(), stack.version))
            .collect::<BTreeMap<_, _>>();
        let refactor = self
            .refactors
            .iter_mut()
            .find(|refactor| refactor.id == id)
            .ok_or(AwsError::NotFound)?;
        if refactor.state == RefactorState::Ready
            && refactor
                .versions
                .iter()
                .any(|(name, version)| versions.get(name) != Some(version))
        {
            refactor.state =
                RefactorState::Failed("the refactor is obsolete: a stack changed since".into());
        }
        Ok(refactor.state.clone())
    }

    pub(super) fn execute_stack_refactor(&mut self, id: &str) -> AwsResult<()> {
        if self.stack_refactor(id)? != RefactorState::Ready {
            return Err(AwsError::Validation(
                "the stack refactor is not available for execution".into(),
            ));
        }
        let index = self
            .refactors
            .iter()
            .position(|refactor| refactor.id == id)
            .ok_or(AwsError::NotFound)?;
        let refactor = self.refactors[index].clone();
        // Take the moving resources out first: a stack may both give and receive.
        let mut taken: BTreeMap<(String, String), DeployedResource> = BTreeMap::new();
        for (from_stack, from_id) in refactor.moves.values() {
            if let Some(resource) = self
                .stacks
                .get_mut(from_stack)
                .and_then(|stack| stack.resources.shift_remove(from_id))
            {
                taken.insert((from_stack.clone(), from_id.clone()), resource);
            }
        }
        for (name, body, template) in &refactor.stacks {
            if !self.stacks.contains_key(name) {
                let stack_id = format!(
                    "arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{name}/{}",
                    uuid(self.clock.unique())
                );
                self.stacks
                    .insert(name.clone(), Stack::empty(name, &stack_id));
            }
            let arrivals: Vec<(String, DeployedResource)> = refactor
                .moves
                .iter()
                .filter(|((to_stack, _), _)| to_stack == name)
                .filter_map(|((_, to_id), origin)| Some((to_id.clone(), taken.remove(origin)?)))
                .collect();
            let State { stacks, clock, .. } = self;
            let Some(stack) = stacks.get_mut(name) else {
                continue;
            };
            let mut resources: IndexMap<String, DeployedResource> = IndexMap::new();
            for logical_id in template.resources.keys() {
                if let Some(resource) = stack.resources.shift_remove(logical_id) {
                    resources.insert(logical_id.clone(), resource);
                }
            }
            for (logical_id, resource) in arrivals {
                stack.record(
                    clock,
                    &logical_id,
                    &resource.resource_type,
                    "IMPORT_COMPLETE",
                    Some("moved in by a stack refactor"),
                );
                resources.insert(logical_id, resource);
            }
            stack.resources = resources;
            stack.template_body = body.clone();
            stack.template = Some(template.clone());
            stack.version += 1;
            stack.last_updated = Some(clock.now());
            stack.record_stack(clock, "UPDATE_COMPLETE", None);
        }
        self.refactors[index].state = RefactorState::Complete;
        Ok(())
    }
}
