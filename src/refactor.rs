//! Apply's first phase: resources leave the stacks an earlier layout had (`plan::moves`). Each
//! retired stack's resources move into the current stacks that declare them, by CloudFormation
//! stack refactoring (kept as they are: same physical resource, same data), at most four
//! destinations per refactor; a stack left with nothing is deleted. CloudFormation does not
//! allow a refactor to empty a stack ("CloudFormation doesn't support empty stacks", User Guide,
//! "Stack refactoring"), so a stack that empties first gets a placeholder resource through an
//! ordinary change set, which its deletion then removes.

use std::time::Duration;

use indexmap::IndexMap;

use crate::apply::{
    ApplyOptions, Interrupt, Outcome, Progress, Reporter, StackResult, delete_and_wait, retry,
    wait_for_change_set,
};
use crate::aws::{
    ChangeSetKind, ChangeSetRequest, ChangeSetStatus, CloudFormation, RefactorRequest,
    RefactorState, TemplateSource,
};
use crate::plan::moves::{Move, RetiredStack};
use crate::plan::{Plan, StackAction};
use crate::template::{Resource, Template};
use crate::validate::MAX_INLINE_BODY;

/// The resource that keeps an emptied stack valid until it is deleted: a wait condition handle
/// has no properties, costs nothing and needs no permission.
pub const PLACEHOLDER: &str = "RetiredStackPlaceholder";

/// Moves what the plan's retired stacks hand over, then deletes those left empty. One result
/// per retired stack; a failure stops there (the stacks after it would try to create what did
/// not move).
pub async fn retire<C: CloudFormation>(
    client: &C,
    plan: &Plan,
    options: &ApplyOptions,
    reporter: &dyn Reporter,
    interrupt: &Interrupt,
) -> Vec<StackResult> {
    let mut results = Vec::new();
    for retired in &plan.retired {
        reporter.report(Progress::Started {
            stack: retired.name.clone(),
        });
        let outcome = match retire_one(client, retired, options, reporter, interrupt).await {
            Ok(status) => Outcome::Applied { status },
            Err(outcome) => outcome,
        };
        reporter.report(Progress::Finished {
            stack: retired.name.clone(),
            outcome: outcome.clone(),
        });
        let failed = !outcome.is_success();
        results.push(StackResult {
            id: retired.id.clone(),
            name: retired.name.clone(),
            outcome,
        });
        if failed {
            break;
        }
    }
    results
}

/// The plan apply goes on with once the moves are done: a destination the refactor created now
/// exists, holding what moved in, so its change set updates it.
pub fn after_moves(plan: &Plan) -> Plan {
    let mut after = plan.clone();
    let destinations: Vec<&str> = plan
        .retired
        .iter()
        .flat_map(|retired| &retired.moves)
        .map(|found| found.to_stack.as_str())
        .collect();
    for stack in &mut after.stacks {
        if destinations.contains(&stack.id.as_str()) && stack.action == StackAction::Create {
            stack.action = StackAction::Update;
        }
    }
    after
}

fn failed(reason: String) -> Outcome {
    Outcome::Failed {
        status: None,
        resource: None,
        reason,
    }
}

async fn retire_one<C: CloudFormation>(
    client: &C,
    retired: &RetiredStack,
    options: &ApplyOptions,
    reporter: &dyn Reporter,
    interrupt: &Interrupt,
) -> Result<String, Outcome> {
    let polling = options.polling;
    let note = |message: String| {
        reporter.report(Progress::Note {
            stack: retired.name.clone(),
            message,
        })
    };
    if let Some(reason) = &retired.blocked {
        return Err(failed(format!("cannot move anything out: {reason}")));
    }
    let current = retry(polling, || client.describe_stack(&retired.name))
        .await
        .map_err(|error| failed(error.to_string()))?
        .ok_or_else(|| failed("the stack disappeared since the plan was made".into()))?;
    if current.fingerprint() != retired.fingerprint {
        return Err(failed(
            "the stack changed since the plan was made; run plan again".into(),
        ));
    }
    let mut source = Template::parse(&current.template_body)
        .map_err(|error| failed(format!("cannot read its deployed template: {error}")))?;

    if retired.emptied() && !source.resources.contains_key(PLACEHOLDER) {
        // Outputs go too: they name resources that leave.
        source.outputs.clear();
        source.resources.insert(PLACEHOLDER.into(), placeholder());
        note("adding a placeholder resource: a stack refactor may not leave a stack empty".into());
        let request = ChangeSetRequest {
            stack_name: retired.name.clone(),
            change_set_name: options.change_set_name.clone(),
            kind: ChangeSetKind::Update,
            template: template_source(client, options, &retired.name, &source).await?,
            parameters: current.parameters.clone(),
            tags: current.tags.clone(),
            capabilities: Vec::new(),
            role_arn: current.role_arn.clone(),
            description: format!("mlops-infra: {} is retired", retired.id),
            rollback: None,
            revert_drift: false,
        };
        let id = retry(polling, || client.create_change_set(&request))
            .await
            .map_err(|error| failed(format!("cannot create the change set: {error}")))?;
        match wait_for_change_set(client, &id, polling, interrupt).await {
            Ok(ChangeSetStatus::Ready) => {
                retry(polling, || client.execute_change_set(&id))
                    .await
                    .map_err(|error| failed(format!("cannot execute the change set: {error}")))?;
                wait_settled(client, &retired.name, options, interrupt).await?;
            }
            Ok(other) => {
                let _ = client.delete_change_set(&id).await;
                return Err(failed(format!(
                    "the placeholder's change set did not run: {other:?}"
                )));
            }
            Err(error) => return Err(failed(error.to_string())),
        }
    }

    for (index, batch) in retired.batches().iter().enumerate() {
        if interrupt.is_raised() {
            return Err(Outcome::Interrupted {
                reason: "interrupted between stack refactors; plan again to move the rest".into(),
            });
        }
        let request = refactor_request(client, options, retired, &mut source, batch).await?;
        let id = retry(polling, || client.create_stack_refactor(&request))
            .await
            .map_err(|error| failed(format!("cannot create the stack refactor: {error}")))?;
        match wait_refactor(client, &id, options, interrupt).await? {
            RefactorState::Ready => {}
            RefactorState::Failed(reason) => {
                return Err(failed(format!("the stack refactor was refused: {reason}")));
            }
            other => return Err(failed(format!("the stack refactor is {other:?}"))),
        }
        retry(polling, || client.execute_stack_refactor(&id))
            .await
            .map_err(|error| failed(format!("cannot execute the stack refactor: {error}")))?;
        match wait_refactor(client, &id, options, interrupt).await? {
            RefactorState::Complete => {}
            RefactorState::Failed(reason) => {
                return Err(failed(format!("the stack refactor failed: {reason}")));
            }
            other => return Err(failed(format!("the stack refactor is {other:?}"))),
        }
        for found in batch {
            note(format!(
                "moved {} ({} {}) to {} as {} (refactor {} of {})",
                found.from_logical_id,
                found.resource_type,
                found.name,
                found.to_stack,
                found.to_logical_id,
                index + 1,
                retired.batches().len()
            ));
        }
    }

    if retired.emptied() {
        note("everything moved out: deleting the stack".into());
        delete_and_wait(client, &retired.name, polling, interrupt).await?;
        Ok("DELETE_COMPLETE".into())
    } else {
        Ok(format!("{} moved out", retired.moves.len()))
    }
}

/// One refactor: the retired stack without the batch's resources, each destination as
/// deployed plus what moves in (a destination not deployed yet is created holding only that).
async fn refactor_request<C: CloudFormation>(
    client: &C,
    options: &ApplyOptions,
    retired: &RetiredStack,
    source: &mut Template,
    batch: &[&Move],
) -> Result<RefactorRequest, Outcome> {
    let polling = options.polling;
    let mut destinations: IndexMap<String, Template> = IndexMap::new();
    let mut enable_stack_creation = false;
    let mut mappings = Vec::new();
    for found in batch {
        let resource = source
            .resources
            .shift_remove(&found.from_logical_id)
            .ok_or_else(|| {
                failed(format!(
                    "{} is no longer in the stack; run plan again",
                    found.from_logical_id
                ))
            })?;
        if !destinations.contains_key(&found.to_stack_name) {
            let deployed = retry(polling, || client.describe_stack(&found.to_stack_name))
                .await
                .map_err(|error| failed(error.to_string()))?
                .filter(|stack| !stack.status.is_review());
            let template = match deployed {
                Some(stack) => Template::parse(&stack.template_body).map_err(|error| {
                    failed(format!(
                        "cannot read the deployed template of {}: {error}",
                        found.to_stack_name
                    ))
                })?,
                None => {
                    enable_stack_creation = true;
                    Template {
                        format_version: Some("2010-09-09".into()),
                        description: Some(format!(
                            "{}: moved in from {}",
                            found.to_stack_name, retired.name
                        )),
                        ..Template::default()
                    }
                }
            };
            destinations.insert(found.to_stack_name.clone(), template);
        }
        destinations[&found.to_stack_name]
            .resources
            .insert(found.to_logical_id.clone(), resource);
        mappings.push((
            retired.name.clone(),
            found.from_logical_id.clone(),
            found.to_stack_name.clone(),
            found.to_logical_id.clone(),
        ));
    }
    let mut stacks = vec![(
        retired.name.clone(),
        template_source(client, options, &retired.name, source).await?,
    )];
    for (name, template) in &destinations {
        stacks.push((
            name.clone(),
            template_source(client, options, name, template).await?,
        ));
    }
    Ok(RefactorRequest {
        description: format!("mlops-infra: out of retired stack {}", retired.id),
        stacks,
        mappings,
        enable_stack_creation,
    })
}

fn placeholder() -> Resource {
    Resource {
        resource_type: "AWS::CloudFormation::WaitConditionHandle".into(),
        properties: IndexMap::new(),
        depends_on: Vec::new(),
        condition: None,
        deletion_policy: None,
        update_replace_policy: None,
        attributes: IndexMap::new(),
    }
}

/// The template inline, or uploaded when over CloudFormation's inline limit.
async fn template_source<C: CloudFormation>(
    client: &C,
    options: &ApplyOptions,
    stack: &str,
    template: &Template,
) -> Result<TemplateSource, Outcome> {
    let body = template.to_yaml_string();
    if body.len() <= MAX_INLINE_BODY {
        return Ok(TemplateSource::Body(body));
    }
    let key = format!(
        "cloudformation/{stack}/{}-refactor.yaml",
        options.change_set_name
    );
    retry(options.polling, || {
        client.upload_template(&options.template_bucket, &key, body.as_bytes())
    })
    .await
    .map(TemplateSource::Url)
    .map_err(|error| failed(format!("cannot upload the template: {error}")))
}

/// Polls a refactor until it is no longer running.
async fn wait_refactor<C: CloudFormation>(
    client: &C,
    id: &str,
    options: &ApplyOptions,
    interrupt: &Interrupt,
) -> Result<RefactorState, Outcome> {
    let polling = options.polling;
    let mut delay = polling.initial.min(Duration::from_secs(2));
    let mut waited = Duration::ZERO;
    loop {
        let state = retry(polling, || client.stack_refactor(id))
            .await
            .map_err(|error| failed(format!("cannot read the stack refactor: {error}")))?;
        if state != RefactorState::Running {
            return Ok(state);
        }
        if interrupt.is_raised() || waited >= polling.timeout {
            return Err(Outcome::Interrupted {
                reason: format!("stopped waiting for stack refactor {id}"),
            });
        }
        tokio::time::sleep(delay).await;
        waited += delay;
        delay = (delay * 2).min(polling.max);
    }
}

/// Polls a stack until its operation ends; an update that did not complete is a failure.
async fn wait_settled<C: CloudFormation>(
    client: &C,
    stack: &str,
    options: &ApplyOptions,
    interrupt: &Interrupt,
) -> Result<(), Outcome> {
    let polling = options.polling;
    let mut delay = polling.initial;
    let mut waited = Duration::ZERO;
    loop {
        let current = retry(polling, || client.stack_state(stack))
            .await
            .map_err(|error| failed(error.to_string()))?
            .ok_or_else(|| failed("the stack disappeared".into()))?;
        if !current.status.is_in_progress() {
            return if current.status.0 == "UPDATE_COMPLETE" {
                Ok(())
            } else {
                Err(failed(format!(
                    "adding the placeholder ended in {}: {}",
                    current.status.0,
                    current.status_reason.unwrap_or_default()
                )))
            };
        }
        if interrupt.is_raised() || waited >= polling.timeout {
            return Err(Outcome::Interrupted {
                reason: "stopped waiting for the placeholder update".into(),
            });
        }
        tokio::time::sleep(delay).await;
        waited += delay;
        delay = (delay * 2).min(polling.max);
    }
}
