//! The real AWS adapter (`aws::sdk`): typed outcomes from mocked SDK responses
//! (aws-smithy-mocks), and one round trip through the local emulator (`scripts/local-aws`).

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_cloudformation as cloudformation;
use aws_sdk_cloudformation::config::retry::RetryConfig;
use aws_sdk_cloudformation::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_cloudformation::error::ErrorMetadata;
use aws_sdk_cloudformation::operation::create_change_set::{
    CreateChangeSetError, CreateChangeSetInput, CreateChangeSetOutput,
};
use aws_sdk_cloudformation::operation::describe_change_set::{
    DescribeChangeSetError, DescribeChangeSetOutput,
};
use aws_sdk_cloudformation::operation::describe_stack_events::DescribeStackEventsOutput;
use aws_sdk_cloudformation::operation::describe_stacks::{
    DescribeStacksError, DescribeStacksOutput,
};
use aws_sdk_cloudformation::operation::execute_change_set::ExecuteChangeSetError;
use aws_sdk_cloudformation::operation::get_template::{GetTemplateError, GetTemplateOutput};
use aws_sdk_cloudformation::operation::list_change_sets::ListChangeSetsOutput;
use aws_sdk_cloudformation::primitives::DateTime;
use aws_sdk_cloudformation::types::error::{
    ChangeSetNotFoundException, InvalidChangeSetStatusException,
};
use aws_sdk_cloudformation::types::{
    self as cfn, Capability, ChangeAction, ChangeSetSummary, ChangeSetType, ExecutionStatus,
    Output, Parameter, Replacement, ResourceStatus, Stack, Tag, TemplateStage,
};
use aws_sdk_s3::operation::get_object::{GetObjectError, GetObjectOutput};
use aws_sdk_s3::operation::put_object::{PutObjectError, PutObjectOutput};
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};
use common::LocalAws;

use mlops_infra::aws::sdk::SdkCloudFormation;
use mlops_infra::aws::{
    AwsError, ChangeSet, ChangeSetKind, ChangeSetRequest, ChangeSetStatus, CloudFormation,
    DeployedStack, ResourceChange, TemplateSource,
};

const STACK_ID: &str =
    "arn:aws:cloudformation:us-east-1:123456789012:stack/app/0f6e0b10-8a1c-11ee-9c1a-0a1b2c3d4e5f";
const CHANGE_SET_ID: &str = "arn:aws:cloudformation:us-east-1:123456789012:changeSet/plan-1/7d1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b";
const BODY: &str = "Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n";
const NO_CHANGES: &str = "The submitted information didn't contain changes. Submit different information to create a change set.";

// --- clients answering from mock rules ----------------------------------------------------------

fn interceptor(rules: &[&Rule]) -> MockResponseInterceptor {
    interceptor_in(rules, RuleMode::Sequential)
}

fn interceptor_in(rules: &[&Rule], mode: RuleMode) -> MockResponseInterceptor {
    rules.iter().fold(
        MockResponseInterceptor::new().rule_mode(mode),
        |interceptor, rule| interceptor.with_rule(rule),
    )
}

/// A found stack is read with DescribeStacks, then GetTemplate: the template's answer, for
/// tests about the other call.
fn any_template() -> Rule {
    mock!(cloudformation::Client::get_template)
        .then_output(|| GetTemplateOutput::builder().template_body(BODY).build())
}

/// A CloudFormation client answering from whichever of `rules` matches (concurrent calls).
fn cloudformation_client_any(rules: &[&Rule], retry: RetryConfig) -> cloudformation::Client {
    let config = cloudformation::Config::builder()
        .with_test_defaults()
        .region(Region::new("us-east-1"))
        .retry_config(retry)
        .http_client(create_mock_http_client())
        .interceptor(interceptor_in(rules, RuleMode::MatchAny))
        .build();
    cloudformation::Client::from_conf(config)
}

/// A CloudFormation client answering from `rules` in order, without retries.
fn cloudformation_client(rules: &[&Rule]) -> cloudformation::Client {
    cloudformation_client_with(rules, RetryConfig::disabled())
}

fn cloudformation_client_with(rules: &[&Rule], retry: RetryConfig) -> cloudformation::Client {
    let config = cloudformation::Config::builder()
        .with_test_defaults()
        .region(Region::new("us-east-1"))
        .retry_config(retry)
        .http_client(create_mock_http_client())
        .interceptor(interceptor(rules))
        .build();
    cloudformation::Client::from_conf(config)
}

fn s3_client(rules: &[&Rule]) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .http_client(create_mock_http_client())
        .interceptor(interceptor(rules))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

fn adapter(rules: &[&Rule]) -> SdkCloudFormation {
    SdkCloudFormation::from_clients(cloudformation_client(rules), s3_client(&[]))
}

fn metadata(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

fn change(
    logical_id: &str,
    resource_type: &str,
    action: ChangeAction,
    replacement: Option<Replacement>,
) -> cfn::Change {
    cfn::Change::builder()
        .r#type(cfn::ChangeType::Resource)
        .resource_change(
            cfn::ResourceChange::builder()
                .logical_resource_id(logical_id)
                .resource_type(resource_type)
                .action(action)
                .set_replacement(replacement)
                .build(),
        )
        .build()
}

fn resource_change(
    logical_id: &str,
    resource_type: &str,
    action: &str,
    replacement: Option<&str>,
) -> ResourceChange {
    ResourceChange {
        logical_id: logical_id.into(),
        resource_type: resource_type.into(),
        action: action.into(),
        replacement: replacement.map(str::to_string),
    }
}

fn event(
    logical_id: &str,
    physical_id: &str,
    resource_type: &str,
    status: ResourceStatus,
    second: i64,
) -> cfn::StackEvent {
    cfn::StackEvent::builder()
        .stack_id(STACK_ID)
        .stack_name("app")
        .event_id(format!("{logical_id}-{}-{second}", status.as_str()))
        .logical_resource_id(logical_id)
        .physical_resource_id(physical_id)
        .resource_type(resource_type)
        .resource_status(status)
        .timestamp(DateTime::from_secs(1_700_000_000 + second))
        .build()
}

// --- describe_stack ------------------------------------------------------------------------------

#[tokio::test]
async fn a_missing_stack_is_none() {
    let describe = mock!(cloudformation::Client::describe_stacks)
        .match_requests(|input| input.stack_name() == Some("app"))
        .then_error(|| {
            DescribeStacksError::generic(metadata(
                "ValidationError",
                "Stack with id app does not exist",
            ))
        });
    // The template is asked for only once the stack is found.
    let template = mock!(cloudformation::Client::get_template)
        .match_requests(|input| input.stack_name() == Some("app"))
        .then_error(|| {
            GetTemplateError::generic(metadata(
                "ValidationError",
                "Stack with id app does not exist",
            ))
        });
    let adapter = adapter(&[&describe, &template]);
    assert_eq!(adapter.describe_stack("app").await, Ok(None));
    assert_eq!(describe.num_calls(), 1);
    assert_eq!(template.num_calls(), 0);
}

#[tokio::test]
async fn a_stack_is_read_with_its_original_template() {
    let describe = mock!(cloudformation::Client::describe_stacks).then_output(|| {
        DescribeStacksOutput::builder()
            .stacks(
                Stack::builder()
                    .stack_name("app")
                    .stack_id(STACK_ID)
                    .stack_status(cfn::StackStatus::UpdateRollbackComplete)
                    .stack_status_reason("The following resource(s) failed to update: [Topic].")
                    .parameters(
                        Parameter::builder()
                            .parameter_key("DisplayName")
                            .parameter_value("alerts")
                            .build(),
                    )
                    .outputs(
                        Output::builder()
                            .output_key("TopicArn")
                            .output_value("arn:aws:sns:us-east-1:123456789012:app-Topic-1")
                            .build(),
                    )
                    .tags(Tag::builder().key("project").value("mlops").build())
                    .enable_termination_protection(true)
                    .role_arn("arn:aws:iam::123456789012:role/mlops-dev-cloudformation")
                    .creation_time(DateTime::from_secs(1_700_000_000))
                    .last_updated_time(DateTime::from_secs(1_700_000_600))
                    .build(),
            )
            .build()
    });
    let template = mock!(cloudformation::Client::get_template)
        .match_requests(|input| {
            input.stack_name() == Some("app")
                && input.template_stage() == Some(&TemplateStage::Original)
        })
        .then_output(|| GetTemplateOutput::builder().template_body(BODY).build());
    let adapter = adapter(&[&describe, &template]);
    let stack = adapter
        .describe_stack("app")
        .await
        .expect("describe")
        .expect("a stack");
    let strings = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    };
    assert_eq!(
        stack,
        DeployedStack {
            name: "app".into(),
            id: STACK_ID.into(),
            status: mlops_infra::aws::StackStatus::new("UPDATE_ROLLBACK_COMPLETE"),
            status_reason: Some("The following resource(s) failed to update: [Topic].".into()),
            parameters: strings(&[("DisplayName", "alerts")]),
            tags: strings(&[("project", "mlops")]),
            outputs: strings(&[("TopicArn", "arn:aws:sns:us-east-1:123456789012:app-Topic-1")]),
            termination_protection: true,
            last_updated: Some("2023-11-14T22:23:20Z".into()),
            role_arn: Some("arn:aws:iam::123456789012:role/mlops-dev-cloudformation".into()),
            template_body: BODY.into(),
            last_operation_id: None,
            detailed_status: None,
        }
    );
    assert_eq!(template.num_calls(), 1);
}

#[tokio::test]
async fn a_stack_state_is_one_describe_stacks_without_the_template() {
    let describe = mock!(cloudformation::Client::describe_stacks)
        .match_requests(|input| input.stack_name() == Some("app"))
        .then_output(|| {
            DescribeStacksOutput::builder()
                .stacks(
                    Stack::builder()
                        .stack_name("app")
                        .stack_id(STACK_ID)
                        .stack_status(cfn::StackStatus::UpdateInProgress)
                        .outputs(
                            Output::builder()
                                .output_key("Url")
                                .output_value("u")
                                .build(),
                        )
                        .creation_time(DateTime::from_secs(1_700_000_000))
                        .build(),
                )
                .build()
        });
    let template = any_template();
    let stack = adapter(&[&describe, &template])
        .stack_state("app")
        .await
        .expect("describe")
        .expect("a stack");
    assert_eq!(stack.status.as_str(), "UPDATE_IN_PROGRESS");
    assert_eq!(stack.outputs.get("Url").map(String::as_str), Some("u"));
    assert_eq!(stack.template_body, "");
    assert_eq!((describe.num_calls(), template.num_calls()), (1, 0));

    let missing = mock!(cloudformation::Client::describe_stacks).then_error(|| {
        DescribeStacksError::generic(metadata(
            "ValidationError",
            "Stack with id gone does not exist",
        ))
    });
    assert_eq!(adapter(&[&missing]).stack_state("gone").await, Ok(None));
}

#[tokio::test]
async fn a_review_stack_is_read_without_a_template() {
    let describe = mock!(cloudformation::Client::describe_stacks).then_output(|| {
        DescribeStacksOutput::builder()
            .stacks(
                Stack::builder()
                    .stack_name("app")
                    .stack_id(STACK_ID)
                    .stack_status(cfn::StackStatus::ReviewInProgress)
                    .creation_time(DateTime::from_secs(1_700_000_000))
                    .build(),
            )
            .build()
    });
    // Whatever GetTemplate answers for it is not its template.
    let template = any_template();
    let adapter = adapter(&[&describe, &template]);
    let stack = adapter
        .describe_stack("app")
        .await
        .expect("describe")
        .expect("a stack");
    assert!(stack.status.is_review());
    assert_eq!(stack.template_body, "");
    // Without LastUpdatedTime, the creation time.
    assert_eq!(stack.last_updated.as_deref(), Some("2023-11-14T22:13:20Z"));
    assert!(!stack.termination_protection);
    assert_eq!(template.num_calls(), 0);
}

// --- change sets ------------------------------------------------------------------------------------

#[tokio::test]
async fn a_change_set_without_changes_is_no_changes() {
    for reason in [NO_CHANGES, "No updates are to be performed."] {
        let describe = mock!(cloudformation::Client::describe_change_set).then_output(move || {
            DescribeChangeSetOutput::builder()
                .change_set_id(CHANGE_SET_ID)
                .status(cfn::ChangeSetStatus::Failed)
                .execution_status(ExecutionStatus::Unavailable)
                .status_reason(reason)
                .build()
        });
        let adapter = adapter(&[&describe]);
        assert_eq!(
            adapter.describe_change_set(CHANGE_SET_ID).await,
            Ok(ChangeSet {
                id: CHANGE_SET_ID.into(),
                status: ChangeSetStatus::NoChanges,
                changes: Vec::new(),
            }),
            "{reason}"
        );
    }
}

#[tokio::test]
async fn a_change_set_that_failed_otherwise_is_failed_with_the_reason() {
    let describe = mock!(cloudformation::Client::describe_change_set).then_output(|| {
        DescribeChangeSetOutput::builder()
            .change_set_id(CHANGE_SET_ID)
            .status(cfn::ChangeSetStatus::Failed)
            .status_reason(
                "Template error: instance of Fn::GetAtt references undefined resource Key",
            )
            .build()
    });
    let adapter = adapter(&[&describe]);
    assert_eq!(
        adapter
            .describe_change_set(CHANGE_SET_ID)
            .await
            .map(|change_set| change_set.status),
        Ok(ChangeSetStatus::Failed(
            "Template error: instance of Fn::GetAtt references undefined resource Key".into()
        ))
    );
}

#[tokio::test]
async fn a_change_set_is_read_through_every_page() {
    let first = mock!(cloudformation::Client::describe_change_set)
        .match_requests(|input| {
            input.change_set_name() == Some(CHANGE_SET_ID) && input.next_token().is_none()
        })
        .then_output(|| {
            DescribeChangeSetOutput::builder()
                .change_set_id(CHANGE_SET_ID)
                .status(cfn::ChangeSetStatus::CreateComplete)
                .execution_status(ExecutionStatus::Available)
                .changes(change(
                    "Topic",
                    "AWS::SNS::Topic",
                    ChangeAction::Modify,
                    Some(Replacement::True),
                ))
                .changes(change(
                    "Pointer",
                    "AWS::SSM::Parameter",
                    ChangeAction::Modify,
                    Some(Replacement::Conditional),
                ))
                .next_token("page-2")
                .build()
        });
    let second = mock!(cloudformation::Client::describe_change_set)
        .match_requests(|input| {
            input.change_set_name() == Some(CHANGE_SET_ID) && input.next_token() == Some("page-2")
        })
        .then_output(|| {
            DescribeChangeSetOutput::builder()
                .change_set_id(CHANGE_SET_ID)
                .status(cfn::ChangeSetStatus::CreateComplete)
                .execution_status(ExecutionStatus::Available)
                .changes(change(
                    "Policy",
                    "AWS::SNS::TopicPolicy",
                    ChangeAction::Modify,
                    Some(Replacement::False),
                ))
                .changes(change("Queue", "AWS::SQS::Queue", ChangeAction::Add, None))
                .changes(change("Old", "AWS::SQS::Queue", ChangeAction::Remove, None))
                .build()
        });
    let adapter = adapter(&[&first, &second]);
    let change_set = adapter
        .describe_change_set(CHANGE_SET_ID)
        .await
        .expect("describe change set");
    assert_eq!(change_set.status, ChangeSetStatus::Ready);
    assert_eq!(
        change_set.changes,
        vec![
            resource_change("Topic", "AWS::SNS::Topic", "Modify", Some("True")),
            resource_change(
                "Pointer",
                "AWS::SSM::Parameter",
                "Modify",
                Some("Conditional")
            ),
            resource_change("Policy", "AWS::SNS::TopicPolicy", "Modify", Some("False")),
            resource_change("Queue", "AWS::SQS::Queue", "Add", None),
            resource_change("Old", "AWS::SQS::Queue", "Remove", None),
        ]
    );
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
}

#[tokio::test]
async fn a_change_set_being_computed_is_pending_and_one_gone_is_not_found() {
    let pending = mock!(cloudformation::Client::describe_change_set).then_output(|| {
        DescribeChangeSetOutput::builder()
            .change_set_id(CHANGE_SET_ID)
            .status(cfn::ChangeSetStatus::CreateInProgress)
            .execution_status(ExecutionStatus::Unavailable)
            // A token while pending is not followed: the list is not final yet.
            .next_token("page-2")
            .build()
    });
    let gone = mock!(cloudformation::Client::describe_change_set).then_error(|| {
        DescribeChangeSetError::ChangeSetNotFoundException(
            ChangeSetNotFoundException::builder()
                .message("ChangeSet [plan-1] does not exist")
                .meta(metadata(
                    "ChangeSetNotFound",
                    "ChangeSet [plan-1] does not exist",
                ))
                .build(),
        )
    });
    let adapter = adapter(&[&pending, &gone]);
    assert_eq!(
        adapter
            .describe_change_set(CHANGE_SET_ID)
            .await
            .map(|change_set| change_set.status),
        Ok(ChangeSetStatus::Pending)
    );
    assert_eq!(
        adapter.describe_change_set(CHANGE_SET_ID).await,
        Err(AwsError::NotFound)
    );
}

#[tokio::test]
async fn a_change_set_request_carries_everything_it_was_given() {
    let seen: Arc<Mutex<Option<CreateChangeSetInput>>> = Arc::default();
    let recorder = Arc::clone(&seen);
    let create = mock!(cloudformation::Client::create_change_set)
        .match_requests(move |input| {
            if let Ok(mut seen) = recorder.lock() {
                *seen = Some(input.clone());
            }
            true
        })
        .then_output(|| {
            CreateChangeSetOutput::builder()
                .id(CHANGE_SET_ID)
                .stack_id(STACK_ID)
                .build()
        });
    let adapter = adapter(&[&create]);
    let request = ChangeSetRequest {
        stack_name: "app".into(),
        change_set_name: "plan-1".into(),
        kind: ChangeSetKind::Update,
        template: TemplateSource::Url(
            "https://templates.s3.us-east-1.amazonaws.com/dev/app.yaml".into(),
        ),
        parameters: [("B", "2"), ("A", "1")]
            .into_iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect(),
        tags: [("project".to_string(), "mlops".to_string())].into(),
        capabilities: vec!["CAPABILITY_NAMED_IAM".into()],
        role_arn: Some("arn:aws:iam::123456789012:role/deployer".into()),
        description: "mlops-infra plan".into(),
        rollback: Some(mlops_infra::aws::Rollback {
            alarm_arns: vec!["arn:aws:cloudwatch:us-east-1:123456789012:alarm:e-5xx-errors".into()],
            monitoring_minutes: 15,
        }),
        revert_drift: true,
    };
    assert_eq!(
        adapter.create_change_set(&request).await,
        Ok(CHANGE_SET_ID.to_string())
    );
    let input = seen
        .lock()
        .ok()
        .and_then(|seen| seen.clone())
        .expect("a CreateChangeSet request");
    assert_eq!(input.stack_name(), Some("app"));
    assert_eq!(input.change_set_name(), Some("plan-1"));
    assert_eq!(input.change_set_type(), Some(&ChangeSetType::Update));
    assert_eq!(
        input.template_url(),
        Some("https://templates.s3.us-east-1.amazonaws.com/dev/app.yaml")
    );
    assert_eq!(input.template_body(), None);
    let rollback = input.rollback_configuration().expect("rollback triggers");
    assert_eq!(rollback.monitoring_time_in_minutes(), Some(15));
    assert_eq!(
        input.deployment_mode(),
        Some(&aws_sdk_cloudformation::types::DeploymentMode::RevertDrift),
        "a drift-aware change set"
    );
    let triggers: Vec<(Option<&str>, Option<&str>)> = rollback
        .rollback_triggers()
        .iter()
        .map(|trigger| (trigger.arn(), trigger.r#type()))
        .collect();
    assert_eq!(
        triggers,
        vec![(
            Some("arn:aws:cloudwatch:us-east-1:123456789012:alarm:e-5xx-errors"),
            Some("AWS::CloudWatch::Alarm")
        )]
    );
    let parameters: Vec<(Option<&str>, Option<&str>)> = input
        .parameters()
        .iter()
        .map(|parameter| (parameter.parameter_key(), parameter.parameter_value()))
        .collect();
    assert_eq!(
        parameters,
        vec![(Some("A"), Some("1")), (Some("B"), Some("2"))]
    );
    let tags: Vec<(Option<&str>, Option<&str>)> = input
        .tags()
        .iter()
        .map(|tag| (tag.key(), tag.value()))
        .collect();
    assert_eq!(tags, vec![(Some("project"), Some("mlops"))]);
    assert_eq!(input.capabilities(), &[Capability::CapabilityNamedIam]);
    assert_eq!(
        input.role_arn(),
        Some("arn:aws:iam::123456789012:role/deployer")
    );
    assert_eq!(input.description(), Some("mlops-infra plan"));
}

#[tokio::test]
async fn an_update_change_set_for_a_missing_stack_is_a_validation_error() {
    let create = mock!(cloudformation::Client::create_change_set).then_error(|| {
        CreateChangeSetError::generic(metadata("ValidationError", "Stack [app] does not exist"))
    });
    let adapter = adapter(&[&create]);
    let request = ChangeSetRequest {
        stack_name: "app".into(),
        change_set_name: "plan-1".into(),
        kind: ChangeSetKind::Update,
        template: TemplateSource::Body(BODY.into()),
        parameters: BTreeMap::new(),
        tags: BTreeMap::new(),
        capabilities: Vec::new(),
        role_arn: None,
        description: String::new(),
        rollback: None,
        revert_drift: false,
    };
    assert_eq!(
        adapter.create_change_set(&request).await,
        Err(AwsError::Validation("Stack [app] does not exist".into()))
    );
}

#[tokio::test]
async fn execute_errors_are_typed() {
    let not_executable = mock!(cloudformation::Client::execute_change_set).then_error(|| {
        let message = format!(
            "ChangeSet [{CHANGE_SET_ID}] cannot be executed in its current execution status of [OBSOLETE]"
        );
        ExecuteChangeSetError::InvalidChangeSetStatusException(
            InvalidChangeSetStatusException::builder()
                .message(&message)
                .meta(metadata("InvalidChangeSetStatus", &message))
                .build(),
        )
    });
    let denied = mock!(cloudformation::Client::execute_change_set).then_error(|| {
        ExecuteChangeSetError::generic(metadata(
            "AccessDenied",
            "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: cloudformation:ExecuteChangeSet",
        ))
    });
    let unknown = mock!(cloudformation::Client::execute_change_set).then_error(|| {
        ExecuteChangeSetError::generic(metadata("InternalFailure", "Internal failure"))
    });
    let adapter = adapter(&[&not_executable, &denied, &unknown]);
    assert!(matches!(
        adapter.execute_change_set(CHANGE_SET_ID).await,
        Err(AwsError::Validation(message)) if message.ends_with("[OBSOLETE]")
    ));
    assert!(matches!(
        adapter.execute_change_set(CHANGE_SET_ID).await,
        Err(AwsError::AccessDenied(message)) if message.contains("not authorized")
    ));
    assert_eq!(
        adapter.execute_change_set(CHANGE_SET_ID).await,
        Err(AwsError::Other("InternalFailure: Internal failure".into()))
    );
}

#[tokio::test]
async fn leftover_change_sets_are_listed_across_pages_for_this_stack_only() {
    let summary = |stack: &str, id: &str| {
        ChangeSetSummary::builder()
            .stack_name(stack)
            .change_set_id(id)
            .change_set_name("plan")
            .build()
    };
    let first = mock!(cloudformation::Client::list_change_sets)
        .match_requests(|input| input.stack_name() == Some("app") && input.next_token().is_none())
        .then_output(move || {
            ListChangeSetsOutput::builder()
                .summaries(summary("app", "arn:1"))
                // Some emulators list every stack's change sets.
                .summaries(summary("other", "arn:other"))
                .next_token("page-2")
                .build()
        });
    let second = mock!(cloudformation::Client::list_change_sets)
        .match_requests(|input| input.next_token() == Some("page-2"))
        .then_output(move || {
            ListChangeSetsOutput::builder()
                .summaries(summary("app", "arn:2"))
                .build()
        });
    let adapter = adapter(&[&first, &second]);
    assert_eq!(
        adapter.list_change_sets("app").await,
        Ok(vec!["arn:1".to_string(), "arn:2".to_string()])
    );
}

// --- events -----------------------------------------------------------------------------------------

#[tokio::test]
async fn events_are_read_back_to_the_start_of_the_last_operation() {
    let first = mock!(cloudformation::Client::describe_stack_events)
        .match_requests(|input| input.stack_name() == Some("app") && input.next_token().is_none())
        .then_output(|| {
            DescribeStackEventsOutput::builder()
                .stack_events(event(
                    "app",
                    STACK_ID,
                    "AWS::CloudFormation::Stack",
                    ResourceStatus::UpdateComplete,
                    40,
                ))
                .stack_events(event(
                    "Topic",
                    "arn:topic",
                    "AWS::SNS::Topic",
                    ResourceStatus::UpdateComplete,
                    30,
                ))
                .next_token("page-2")
                .build()
        });
    let second = mock!(cloudformation::Client::describe_stack_events)
        .match_requests(|input| input.next_token() == Some("page-2"))
        .then_output(|| {
            DescribeStackEventsOutput::builder()
                .stack_events(event(
                    "Topic",
                    "arn:topic",
                    "AWS::SNS::Topic",
                    ResourceStatus::UpdateInProgress,
                    20,
                ))
                // A nested stack's resource is not this stack's start.
                .stack_events(event(
                    "Nested",
                    "arn:nested",
                    "AWS::CloudFormation::Stack",
                    ResourceStatus::UpdateInProgress,
                    15,
                ))
                .stack_events(event(
                    "app",
                    STACK_ID,
                    "AWS::CloudFormation::Stack",
                    ResourceStatus::UpdateInProgress,
                    10,
                ))
                .stack_events(event(
                    "app",
                    STACK_ID,
                    "AWS::CloudFormation::Stack",
                    ResourceStatus::CreateComplete,
                    5,
                ))
                // More history exists; it must not be requested.
                .next_token("page-3")
                .build()
        });
    let adapter = adapter(&[&first, &second]);
    let events = adapter.stack_events("app").await.expect("events");
    let seen: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|event| {
            (
                event.logical_id.as_str(),
                event.status.as_str(),
                event.timestamp.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("app", "UPDATE_COMPLETE", "2023-11-14T22:14:00Z"),
            ("Topic", "UPDATE_COMPLETE", "2023-11-14T22:13:50Z"),
            ("Topic", "UPDATE_IN_PROGRESS", "2023-11-14T22:13:40Z"),
            ("Nested", "UPDATE_IN_PROGRESS", "2023-11-14T22:13:35Z"),
            ("app", "UPDATE_IN_PROGRESS", "2023-11-14T22:13:30Z"),
        ]
    );
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
}

// --- throttling and transport -----------------------------------------------------------------------

#[tokio::test]
async fn throttling_errors_are_throttled() {
    for code in ["Throttling", "ThrottlingException", "RequestLimitExceeded"] {
        let describe = mock!(cloudformation::Client::describe_stacks)
            .then_error(move || DescribeStacksError::generic(metadata(code, "Rate exceeded")));
        let template = any_template();
        let adapter = adapter(&[&describe, &template]);
        let result = adapter.describe_stack("app").await;
        assert_eq!(
            result,
            Err(AwsError::Throttled("Rate exceeded".into())),
            "{code}"
        );
        assert!(result.is_err_and(|error| error.is_transient()));
    }
}

#[tokio::test]
async fn the_sdk_retries_throttling_before_the_adapter_sees_it() {
    let throttled = || DescribeStacksError::generic(metadata("Throttling", "Rate exceeded"));
    let retry = RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(1));

    // Two throttles, then an answer: the caller sees the answer.
    let flaky = mock!(cloudformation::Client::describe_stacks)
        .sequence()
        .error(throttled)
        .times(2)
        .error(|| {
            DescribeStacksError::generic(metadata(
                "ValidationError",
                "Stack with id app does not exist",
            ))
        })
        .build();
    let template = any_template();
    let adapter = SdkCloudFormation::from_clients(
        cloudformation_client_any(&[&flaky, &template], retry.clone()),
        s3_client(&[]),
    );
    assert_eq!(adapter.describe_stack("app").await, Ok(None));
    assert_eq!(flaky.num_calls(), 3);

    // Throttled on every attempt: Throttled after the last one.
    let throttling = mock!(cloudformation::Client::describe_stacks)
        .sequence()
        .error(throttled)
        .times(3)
        .build();
    let adapter = SdkCloudFormation::from_clients(
        cloudformation_client_any(&[&throttling, &template], retry),
        s3_client(&[]),
    );
    assert_eq!(
        adapter.describe_stack("app").await,
        Err(AwsError::Throttled("Rate exceeded".into()))
    );
    assert_eq!(throttling.num_calls(), 3);
}

#[tokio::test]
async fn a_refused_connection_is_unreachable_not_worth_retrying() {
    // Port 1 on the loopback interface: nothing listens, the connection is refused at once.
    let config = cloudformation::Config::builder()
        .with_test_defaults()
        .region(Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:1")
        .retry_config(RetryConfig::disabled())
        .build();
    let adapter =
        SdkCloudFormation::from_clients(cloudformation::Client::from_conf(config), s3_client(&[]));
    let result = adapter.describe_stack("app").await;
    assert_eq!(
        result,
        Err(AwsError::Unreachable("connection refused".into()))
    );
    assert!(!AwsError::Unreachable(String::new()).is_transient());
}

// --- template upload ------------------------------------------------------------------------------

#[tokio::test]
async fn a_template_upload_returns_the_https_url_cloudformation_reads() {
    let put = mock!(aws_sdk_s3::Client::put_object)
        .match_requests(|input| {
            input.bucket() == Some("mlops-templates")
                && input.key() == Some("dev/storage 1.yaml")
                && input.content_type() == Some("text/yaml")
                && input.server_side_encryption().is_none()
                && input.body().bytes() == Some(BODY.as_bytes())
        })
        .then_output(|| PutObjectOutput::builder().build());
    let missing = mock!(aws_sdk_s3::Client::put_object).then_error(|| {
        PutObjectError::generic(metadata(
            "NoSuchBucket",
            "The specified bucket does not exist",
        ))
    });
    let adapter =
        SdkCloudFormation::from_clients(cloudformation_client(&[]), s3_client(&[&put, &missing]));
    assert_eq!(
        adapter
            .upload_template("mlops-templates", "dev/storage 1.yaml", BODY.as_bytes())
            .await,
        Ok("https://mlops-templates.s3.eu-west-1.amazonaws.com/dev/storage%201.yaml".into())
    );
    assert_eq!(
        adapter
            .upload_template("mlops-templates", "dev/storage.yaml", BODY.as_bytes())
            .await,
        Err(AwsError::Validation(
            "s3://mlops-templates/dev/storage.yaml: The specified bucket does not exist".into()
        ))
    );
}

#[tokio::test]
async fn reading_an_object_that_is_not_there_yet_is_none_and_a_refusal_an_error() {
    let found = mock!(aws_sdk_s3::Client::get_object)
        .match_requests(|input| input.key() == Some("cloudformation/app/deployed-templates.json"))
        .then_output(|| {
            GetObjectOutput::builder()
                .body(aws_sdk_s3::primitives::ByteStream::from_static(b"{}"))
                .build()
        });
    let no_key = mock!(aws_sdk_s3::Client::get_object)
        .match_requests(|input| input.key() == Some("no-key"))
        .then_error(|| {
            GetObjectError::NoSuchKey(
                aws_sdk_s3::types::error::NoSuchKey::builder()
                    .message("The specified key does not exist.")
                    .meta(metadata("NoSuchKey", "The specified key does not exist."))
                    .build(),
            )
        });
    let no_bucket = mock!(aws_sdk_s3::Client::get_object)
        .match_requests(|input| input.key() == Some("no-bucket"))
        .then_error(|| {
            GetObjectError::generic(metadata(
                "NoSuchBucket",
                "The specified bucket does not exist",
            ))
        });
    let denied = mock!(aws_sdk_s3::Client::get_object)
        .match_requests(|input| input.key() == Some("denied"))
        .then_error(|| GetObjectError::generic(metadata("AccessDenied", "Access Denied")));
    let adapter = SdkCloudFormation::from_clients(
        cloudformation_client(&[]),
        s3_client(&[&found, &no_key, &no_bucket, &denied]),
    );
    assert_eq!(
        adapter
            .read_object("artifacts", "cloudformation/app/deployed-templates.json")
            .await,
        Ok(Some(b"{}".to_vec()))
    );
    assert_eq!(adapter.read_object("artifacts", "no-key").await, Ok(None));
    assert_eq!(
        adapter.read_object("artifacts", "no-bucket").await,
        Ok(None)
    );
    assert!(matches!(
        adapter.read_object("artifacts", "denied").await,
        Err(AwsError::AccessDenied(_))
    ));
}

// --- against the local emulator --------------------------------------------------------------------

const TOPIC: &str = "\
Parameters:
  DisplayName:
    Type: String
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      DisplayName: !Ref DisplayName
Outputs:
  TopicArn:
    Value: !Ref Topic
  TopicName:
    Value: !GetAtt Topic.TopicName
";

async fn settled(adapter: &SdkCloudFormation, name: &str) -> DeployedStack {
    for _ in 0..60 {
        let stack = adapter
            .describe_stack(name)
            .await
            .expect("describe")
            .expect("the stack exists");
        if !stack.status.is_in_progress() {
            return stack;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("{name} did not settle");
}

async fn computed(adapter: &SdkCloudFormation, id: &str) -> ChangeSet {
    for _ in 0..60 {
        let change_set = adapter
            .describe_change_set(id)
            .await
            .expect("describe change set");
        if change_set.status != ChangeSetStatus::Pending {
            return change_set;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("{id} stayed pending");
}

fn topic_request(
    stack: &str,
    change_set: &str,
    kind: ChangeSetKind,
    template: TemplateSource,
    display_name: &str,
) -> ChangeSetRequest {
    ChangeSetRequest {
        stack_name: stack.into(),
        change_set_name: change_set.into(),
        kind,
        template,
        parameters: [("DisplayName".to_string(), display_name.to_string())].into(),
        tags: [("project".to_string(), "mlops-infra-test".to_string())].into(),
        capabilities: Vec::new(),
        role_arn: None,
        description: "aws_adapter test".into(),
        rollback: None,
        revert_drift: false,
    }
}

#[tokio::test]
async fn a_stack_goes_through_its_life_on_the_local_emulator() {
    let server = LocalAws::start("123456789012");
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&server.url)
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "local-aws",
        ))
        .load()
        .await;
    let adapter = SdkCloudFormation::from_config(&config);
    let stack = format!("mlops-infra-adapter-{}", std::process::id());
    let log = || server.log();

    assert_eq!(adapter.describe_stack(&stack).await, Ok(None), "{}", log());

    // Create through a CREATE change set: the stack waits in review until executed.
    let create = adapter
        .create_change_set(&topic_request(
            &stack,
            "create-1",
            ChangeSetKind::Create,
            TemplateSource::Body(TOPIC.into()),
            "alerts",
        ))
        .await
        .unwrap_or_else(|error| panic!("create change set: {error}\n{}", log()));
    let change_set = computed(&adapter, &create).await;
    assert_eq!(change_set.status, ChangeSetStatus::Ready);
    assert_eq!(
        change_set
            .changes
            .iter()
            .map(|change| (change.logical_id.as_str(), change.action.as_str()))
            .collect::<Vec<_>>(),
        vec![("Topic", "Add")]
    );
    let review = settled(&adapter, &stack).await;
    assert!(review.status.is_review(), "{review:?}");
    assert!(
        adapter
            .list_change_sets(&stack)
            .await
            .expect("list change sets")
            .contains(&create)
    );

    adapter
        .execute_change_set(&create)
        .await
        .unwrap_or_else(|error| panic!("execute: {error}\n{}", log()));
    let created = settled(&adapter, &stack).await;
    assert_eq!(created.status.as_str(), "CREATE_COMPLETE", "{created:?}");
    assert_eq!(created.name, stack);
    assert!(
        created
            .id
            .starts_with("arn:aws:cloudformation:us-east-1:123456789012:stack/")
    );
    assert_eq!(created.template_body, TOPIC);
    assert_eq!(created.parameters["DisplayName"], "alerts");
    assert_eq!(created.tags["project"], "mlops-infra-test");
    assert!(
        created.outputs["TopicArn"].starts_with("arn:aws:sns:us-east-1:123456789012:"),
        "{:?}",
        created.outputs
    );
    assert!(created.last_updated.is_some());

    // The same template, parameters and tags: CloudFormation finds nothing to change.
    let same = adapter
        .create_change_set(&topic_request(
            &stack,
            "same-1",
            ChangeSetKind::Update,
            TemplateSource::Body(TOPIC.into()),
            "alerts",
        ))
        .await
        .unwrap_or_else(|error| panic!("no-change change set: {error}\n{}", log()));
    assert_eq!(
        computed(&adapter, &same).await.status,
        ChangeSetStatus::NoChanges
    );
    adapter
        .delete_change_set(&same)
        .await
        .expect("delete change set");

    // A real change, with the template read from S3 through the URL the upload returns.
    let bucket = format!("mlops-infra-adapter-{}", std::process::id());
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    )
    .create_bucket()
    .bucket(&bucket)
    .send()
    .await
    .unwrap_or_else(|error| panic!("create bucket: {error:?}\n{}", log()));
    let updated_body = format!("{TOPIC}  Display:\n    Value: !Ref DisplayName\n");
    let url = adapter
        .upload_template(&bucket, "dev/topic.yaml", updated_body.as_bytes())
        .await
        .unwrap_or_else(|error| panic!("upload: {error}\n{}", log()));
    assert_eq!(
        url,
        format!("https://{bucket}.s3.us-east-1.amazonaws.com/dev/topic.yaml")
    );
    let update = adapter
        .create_change_set(&topic_request(
            &stack,
            "update-1",
            ChangeSetKind::Update,
            TemplateSource::Url(url),
            "paging",
        ))
        .await
        .unwrap_or_else(|error| panic!("update change set: {error}\n{}", log()));
    let change_set = computed(&adapter, &update).await;
    assert_eq!(change_set.status, ChangeSetStatus::Ready);
    assert_eq!(
        change_set
            .changes
            .iter()
            .map(|change| (
                change.logical_id.as_str(),
                change.action.as_str(),
                change.replacement.as_deref()
            ))
            .collect::<Vec<_>>(),
        vec![("Topic", "Modify", Some("False"))]
    );
    adapter
        .execute_change_set(&update)
        .await
        .unwrap_or_else(|error| panic!("execute update: {error}\n{}", log()));
    let updated = settled(&adapter, &stack).await;
    assert_eq!(updated.status.as_str(), "UPDATE_COMPLETE", "{updated:?}");
    assert_eq!(updated.template_body, updated_body);
    assert_eq!(updated.parameters["DisplayName"], "paging");
    assert_eq!(
        updated.outputs.get("Display").map(String::as_str),
        Some("paging")
    );
    assert_ne!(updated.fingerprint(), created.fingerprint());

    let events = adapter.stack_events(&stack).await.expect("stack events");
    assert!(!events.is_empty());
    assert_eq!(events[0].logical_id, stack);
    assert_eq!(events[0].status, "UPDATE_COMPLETE");
    // Compared as times: RFC 3339 text drops trailing zeros of the fraction (`.5346Z`), so it
    // does not sort as text.
    let time = |text: &str| {
        aws_smithy_types::DateTime::from_str(text, aws_smithy_types::date_time::Format::DateTime)
            .expect("an RFC 3339 timestamp")
    };
    assert!(
        events
            .windows(2)
            .all(|pair| time(&pair[0].timestamp) >= time(&pair[1].timestamp)),
        "{events:?}"
    );

    adapter.delete_stack(&stack).await.expect("delete stack");
    assert_eq!(adapter.describe_stack(&stack).await, Ok(None));
    // Deleting it again succeeds, as on AWS.
    assert_eq!(adapter.delete_stack(&stack).await, Ok(()));
}
