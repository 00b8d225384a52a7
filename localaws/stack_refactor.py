"""CloudFormation stack refactoring: CreateStackRefactor, DescribeStackRefactor,
ExecuteStackRefactor, ListStackRefactorActions and ListStackRefactors. moto 5.2.5 has none of them
(HTTP 500, "not been implemented").

The request and answer shapes and the status values are botocore's model (CreateStackRefactorInput,
DescribeStackRefactorOutput, StackRefactorAction, StackRefactorSummary; Status CREATE_IN_PROGRESS |
CREATE_COMPLETE | CREATE_FAILED | DELETE_*, ExecutionStatus UNAVAILABLE | AVAILABLE | OBSOLETE |
EXECUTE_IN_PROGRESS | EXECUTE_COMPLETE | EXECUTE_FAILED | ROLLBACK_*; Action MOVE | CREATE, Entity
RESOURCE | STACK, Detection AUTO | MANUAL; DescribeStackRefactor's StackRefactorNotFoundException).

What AWS documents, and what this module does with it (User Guide, "Stack refactoring", quoted from
its two published versions; the API reference pages add nothing but the shapes):

- Validation is asynchronous: "Use the describe-stack-refactor command to make sure the Status is
  CREATE_COMPLETE. This verifies that the validation is complete", and "CloudFormation will
  validate resource eligibility during refactor creation and report any unsupported resources in
  the output of the describe-stack-refactor command". A real answer (aws/aws-cli issue #9297) shows
  even a length constraint on a template reported as `Status: CREATE_FAILED`, `ExecutionStatus:
  UNAVAILABLE` and a StatusReason that starts with the stack's ARN. So here CreateStackRefactor
  answers an id whenever the request itself is well formed, and every finding about stacks,
  templates and resources makes the refactor CREATE_FAILED / UNAVAILABLE with all findings in
  StatusReason (each prefixed by the stack's ARN, as in that answer; several joined by "; "). A
  request that is not well formed is a ValidationError of the call: no StackDefinitions, more than
  five ("a maximum of 5 stacks (using the AWS CLI)"), a definition without StackName, with neither
  or both of TemplateBody and TemplateURL, or naming a stack twice. The minimum "at least 2 stacks"
  is the console's ("You can move resources between at least 2 stacks (using the console)", the
  current version): with the API one stack may rename its resources (udondan/cfn-teleport renames
  within one stack with a single StackDefinition, tested in its CI against AWS), so one is accepted.
  Validation runs within the call: DescribeStackRefactor never shows CREATE_IN_PROGRESS here.
- The stacks. An existing stack is named by name or ARN. A missing one fails the refactor unless
  EnableStackCreation is true ("Include the --enable-stack-creation option to allow CloudFormation
  to create new stacks if they don't already exist"); such a stack gets its id at creation (it is in
  StackIds) and is created by the execution, holding what the refactor moves into it. "For stacks
  created by the refactor, CloudFormation does not allow Rules or Parameters" (the AWS CDK toolkit's
  refactoring/stack-definitions.ts, which strips them for that reason). "Stack refactor doesn't
  support stacks that have stack policies attached, regardless of what the policies allow or deny":
  a stack with a policy (SetStackPolicy) fails the refactor. A stack must be in a stable status
  (CREATE_COMPLETE, UPDATE_COMPLETE, UPDATE_ROLLBACK_COMPLETE, IMPORT_COMPLETE,
  IMPORT_ROLLBACK_COMPLETE); the wording of that finding is this module's.
- No resource created, deleted or changed: "Refactor operations don't allow new resource
  creations, resource deletions, or changes to resource configurations" ("Stack refactoring is
  limited to reorganizing existing resources. You cannot create or delete resources, modify
  resource configurations", current version). So every resource of the existing stacks' current
  templates must be in exactly one of the new templates, and every resource of the new templates
  must be one of them. Where each one went: a ResourceMapping says so ("For conflicts, provide a
  resource logical ID mapping that shows the source and destination of the conflicting
  resources"; Detection MANUAL); a logical id kept in its stack stays; a logical id that left one
  stack and appears in another moved there (Detection AUTO: "CloudFormation figured out the
  mapping on its own"). A renamed resource without a mapping is therefore a deleted one plus a new
  one, both refused. "You can't refactor the same resource into multiple stacks": a resource kept
  in its stack and also added to another, or named by two mappings, is refused as such. A moved
  resource must have the same Type, the same Properties and the same Metadata. Properties are
  compared as resolved values (Ref, Fn::GetAtt, Fn::Sub, Fn::ImportValue and parameters resolved in
  the new templates, the moved resources standing for themselves): the AWS CDK moves a resource
  another one refers to by rewriting that reference as an export and `Fn::ImportValue` ("Using
  CloudFormation's stack refactoring API, you can move Bar to another stack, as long as you keep
  Foo pointing to it", aws/aws-cdk-cli issue #657), which changes the template text but not the
  configuration. Where a value cannot be resolved before the execution, the template text is
  compared with references renamed. Metadata: "We need to preserve whatever CDKMetadata we had
  before. Otherwise, CloudFormation will consider this a modification" and the CDK keeps each
  resource's `aws:cdk:path` metadata "once CloudFormation starts allowing changes to the construct
  path" (stack-definitions.ts). DeletionPolicy, UpdateReplacePolicy, DependsOn and Condition are
  not compared (nothing documented); the new template's DeletionPolicy and UpdateReplacePolicy
  apply from the execution on.
- "You can't change or add new parameters, conditions, or mappings during a stack refactor": each
  Parameter, Condition and Mapping of an existing stack's new template must be in its current
  template, unchanged (removing one is not refused: the docs forbid changing and adding). Outputs
  are not restricted by the docs: they may be added, changed or removed (an output naming a moved
  resource must go, or the template does not resolve). Every Ref, Fn::GetAtt and Fn::Sub name of
  a new template must be one of its resources or parameters or a pseudo parameter ("Unresolved
  resource dependencies [X] in the Resources block of the template", CloudFormation's template
  error); an Fn::ImportValue must name an export that exists after the refactor. Exports: an export
  name another stack already exports, and an export of these stacks removed or changed while a
  stack outside the refactor imports it, fail the refactor ("checks cross-stack dependencies").
- Pseudo parameters: "You can't refactor resources that refer to pseudo parameters whose values
  differ between the source and destination stacks, such as AWS::StackName" (current version);
  "You cannot refactor a resource to a new stack if that stack uses certain pseudo parameters
  (Example: AWS::StackName)" (earlier version, quoted by the Classmethod blog post "Stack
  Refactoring は擬似パラメータを引き継いだまま移動できるのか", which found AWS::StackName, AWS::StackId
  and AWS::NotificationARNs refused). Here a resource that changes stack may not refer to
  AWS::StackName or AWS::StackId, nor to AWS::NotificationARNs when the two stacks' notification
  ARNs differ; a created stack's template may not refer to AWS::StackName or AWS::StackId at all.
  AWS::Region, AWS::AccountId, AWS::Partition and AWS::URLSuffix are the same in both stacks.
- "CloudFormation doesn't support empty stacks. If refactoring would leave a stack with no
  resources, you must first add at least one resource to that stack": a new template without
  resources fails the refactor.
- Types: "The following resources aren't supported for stack refactoring" (the list below,
  `UNSUPPORTED`, as published; `AWS::SageMaker::InferenceComponen` there is read as
  InferenceComponent), and custom resources (`Custom::*` is AWS::CloudFormation::CustomResource). A
  moved resource of such a type fails the refactor. "Stack refactoring only supports resource types
  with a provisioningType of FULLY_MUTABLE" is not checked (no type registry here).
- A refactor that moves and renames nothing fails (this module's choice and wording; AWS does not
  say).
- Execution. "Use the describe-stack-refactor command to make sure the Status is CREATE_COMPLETE";
  ExecuteStackRefactor of a refactor that is not CREATE_COMPLETE / AVAILABLE is a ValidationError
  (wording after ExecuteChangeSet's "cannot be executed in its current execution status of [...]";
  the API reference lists no error for ExecuteStackRefactor). OBSOLETE is documented only for
  change sets ("in an OBSOLETE state because the stack was already updated", API reference,
  ChangeSetSummary); here likewise a refactor whose stack changed after its creation (any stack
  operation since, another refactor's execution included, a stack deleted, or a stack it would
  create now existing) is OBSOLETE when next described, listed or executed. The execution is
  synchronous and ends EXECUTE_COMPLETE (the waiters' success state). It moves the resources
  without touching them: the service's resource keeps its identity, only the stacks' records
  change: each stack's template (GetTemplate answers the body given), its resources under their
  new logical ids with the same physical ids (ListStackResources, DescribeStackResources), its
  parameters, conditions, outputs and exports. Stack statuses: the affected stacks go
  UPDATE_IN_PROGRESS -> UPDATE_COMPLETE ("CloudFormation marks a stack refactor's ExecutionStatus as
  EXECUTE_COMPLETE while the affected stacks themselves are still in UPDATE_IN_PROGRESS for a few
  more seconds (observed: 0.5-3 seconds between the last IMPORT_COMPLETE stack event and the stack
  becoming stable)", aws/aws-cdk-cli issue #1804); each resource moved (or renamed) into a stack gets
  IMPORT_IN_PROGRESS and IMPORT_COMPLETE events there. A created stack goes CREATE_IN_PROGRESS ->
  CREATE_COMPLETE (AWS does not say). Deleting a source stack afterwards leaves what moved out of it:
  it is no longer among its resources. The stacks' change sets still AVAILABLE become OBSOLETE (and
  ExecuteChangeSet refuses them, as InvalidChangeSetStatus); drift results of the moved resources
  are dropped from their source stacks.
- ListStackRefactorActions: a CREATE/STACK action per stack the execution creates, then one
  MOVE/RESOURCE action per moved or renamed resource, with PhysicalResourceId, Detection, the
  ResourceMapping (StackName as the stack's ARN, as in the User Guide's example output) and
  Description "No configuration changes detected." (the example's, for a resource whose tags do not
  change). TagResources and UntagResources are empty: the emulator puts no `aws:cloudformation:*`
  tags on resources, so there are none to change. Pages of up to MaxResults (default 100).
- ListStackRefactors: every refactor of the account and region, oldest first, filtered by
  ExecutionStatusFilter.
- IAM: "cloudformation:CreateStackRefactor ... Resource types: stack*" (Service Authorization
  Reference, and DescribeStackRefactor, ExecuteStackRefactor, ListStackRefactorActions and
  ListStackRefactors likewise; data/iam-actions.tsv). Under --enforce-iam a request is checked on
  every stack it involves (authorization.STACK_RESOURCES): CreateStackRefactor on each stack of its
  definitions and mappings (a stack it would create as `stack/<name>/*`), the others on the
  refactor's stacks; ListStackRefactors, which names none, on `*` (as a request whose resource
  cannot be derived).

State lives in each CloudFormation backend (account and region), in memory, like moto's.
"""

from __future__ import annotations

import copy
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from moto.cloudformation import parsing
from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.models import (
    ChangeSet,
    CloudFormationBackend,
    Event,
    Export,
    Stack,
    cloudformation_backends,
)
from moto.cloudformation.responses import CloudFormationResponse
from moto.cloudformation.utils import generate_stack_id, get_stack_from_s3_url
from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import utcnow
from moto.utilities.utils import get_partition

from . import authorization, drift, engine
from .handlers.base import ResourceHandler, logger, reason_of
from .patching import wrap as _wrap

MAX_STACKS = 5
PAGE_SIZE = 100
#: Stack statuses a refactor accepts (stable, not failed, not in progress).
REFACTORABLE = (
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_COMPLETE",
)
#: Pseudo parameters whose value differs between two stacks.
STACK_PSEUDO = ("AWS::StackName", "AWS::StackId")
MOVE_DESCRIPTION = "No configuration changes detected."
ACTIONS = (
    "CreateStackRefactor",
    "DescribeStackRefactor",
    "ExecuteStackRefactor",
    "ListStackRefactorActions",
    "ListStackRefactors",
)

#: "The following resources aren't supported for stack refactoring" (User Guide, "Stack
#: refactoring", Resource limitations; the current version's list).
UNSUPPORTED = frozenset(
    """
    AWS::ACMPCA::Certificate AWS::ACMPCA::CertificateAuthority
    AWS::ACMPCA::CertificateAuthorityActivation AWS::ApiGateway::BasePathMapping
    AWS::ApiGateway::Method AWS::AppConfig::ConfigurationProfile AWS::AppConfig::Deployment
    AWS::AppConfig::Environment AWS::AppConfig::Extension AWS::AppConfig::ExtensionAssociation
    AWS::AppStream::DirectoryConfig AWS::AppStream::StackFleetAssociation
    AWS::AppStream::StackUserAssociation AWS::AppStream::User AWS::BackupGateway::Hypervisor
    AWS::CertificateManager::Certificate AWS::CloudFormation::CustomResource
    AWS::CloudFormation::Macro AWS::CloudFormation::WaitCondition
    AWS::CloudFormation::WaitConditionHandle AWS::CodeDeploy::DeploymentGroup
    AWS::CodePipeline::CustomActionType AWS::Cognito::UserPoolRiskConfigurationAttachment
    AWS::Cognito::UserPoolUICustomizationAttachment AWS::Cognito::UserPoolUserToGroupAttachment
    AWS::Config::ConfigRule AWS::Config::ConfigurationRecorder AWS::Config::DeliveryChannel
    AWS::DataBrew::Dataset AWS::DataBrew::Job AWS::DataBrew::Project AWS::DataBrew::Recipe
    AWS::DataBrew::Ruleset AWS::DataBrew::Schedule AWS::DataZone::DataSource
    AWS::DataZone::Environment AWS::DataZone::EnvironmentBlueprintConfiguration
    AWS::DataZone::EnvironmentProfile AWS::DataZone::Project AWS::DataZone::SubscriptionTarget
    AWS::DirectoryService::MicrosoftAD AWS::DynamoDB::GlobalTable AWS::EC2::CustomerGateway
    AWS::EC2::EIP AWS::EC2::LaunchTemplate AWS::EC2::NetworkInterfacePermission
    AWS::EC2::PlacementGroup AWS::EC2::SpotFleet AWS::EC2::VPCDHCPOptionsAssociation
    AWS::EC2::VolumeAttachment AWS::EMR::Cluster AWS::EMR::InstanceFleetConfig
    AWS::EMR::InstanceGroupConfig AWS::ElastiCache::CacheCluster
    AWS::ElastiCache::ReplicationGroup AWS::ElastiCache::SecurityGroup
    AWS::ElastiCache::SecurityGroupIngress AWS::ElasticBeanstalk::ConfigurationTemplate
    AWS::ElasticLoadBalancing::LoadBalancer AWS::ElasticLoadBalancingV2::ListenerCertificate
    AWS::Elasticsearch::Domain AWS::FIS::ExperimentTemplate AWS::Glue::Schema
    AWS::GuardDuty::IPSet AWS::GuardDuty::PublishingDestination AWS::GuardDuty::ThreatIntelSet
    AWS::IAM::AccessKey AWS::IAM::UserToGroupAddition AWS::ImageBuilder::Component
    AWS::IoT::PolicyPrincipalAttachment AWS::IoT::ThingPrincipalAttachment
    AWS::IoTFleetWise::Campaign AWS::IoTWireless::WirelessDeviceImportTask
    AWS::Lambda::EventInvokeConfig AWS::Lex::BotVersion AWS::M2::Application
    AWS::MSK::Configuration AWS::MSK::ServerlessCluster AWS::Maester::DocumentType
    AWS::MediaTailor::Channel AWS::NeptuneGraph::PrivateGraphEndpoint
    AWS::Omics::AnnotationStore AWS::Omics::ReferenceStore AWS::Omics::SequenceStore
    AWS::OpenSearchServerless::Collection AWS::OpsWorks::App
    AWS::OpsWorks::ElasticLoadBalancerAttachment AWS::OpsWorks::Instance AWS::OpsWorks::Layer
    AWS::OpsWorks::Stack AWS::OpsWorks::UserProfile AWS::OpsWorks::Volume
    AWS::PCAConnectorAD::Connector AWS::PCAConnectorAD::DirectoryRegistration
    AWS::PCAConnectorAD::Template AWS::PCAConnectorAD::TemplateGroupAccessControlEntry
    AWS::Panorama::PackageVersion AWS::QuickSight::Theme AWS::RDS::DBSecurityGroup
    AWS::RDS::DBSecurityGroupIngress AWS::Redshift::ClusterSecurityGroup
    AWS::Redshift::ClusterSecurityGroupIngress AWS::RefactorSpaces::Environment
    AWS::RefactorSpaces::Route AWS::RefactorSpaces::Service AWS::RoboMaker::RobotApplication
    AWS::RoboMaker::SimulationApplication AWS::Route53::RecordSet AWS::Route53::RecordSetGroup
    AWS::SDB::Domain AWS::SageMaker::InferenceComponent
    AWS::ServiceCatalog::PortfolioPrincipalAssociation
    AWS::ServiceCatalog::PortfolioProductAssociation AWS::ServiceCatalog::PortfolioShare
    AWS::ServiceCatalog::TagOptionAssociation
    AWS::ServiceCatalogAppRegistry::AttributeGroupAssociation
    AWS::ServiceCatalogAppRegistry::ResourceAssociation AWS::StepFunctions::StateMachineVersion
    AWS::Synthetics::Canary AWS::VoiceID::Domain AWS::WAF::ByteMatchSet AWS::WAF::IPSet
    AWS::WAF::Rule AWS::WAF::SizeConstraintSet AWS::WAF::SqlInjectionMatchSet AWS::WAF::WebACL
    AWS::WAF::XssMatchSet AWS::WAFv2::IPSet AWS::WAFv2::RegexPatternSet AWS::WAFv2::RuleGroup
    AWS::WAFv2::WebACL AWS::WorkSpaces::Workspace
    """.split()
)

_lock = threading.RLock()
_installed = False


class StackRefactorNotFound(ServiceException):
    code = "StackRefactorNotFoundException"


class InvalidChangeSetStatus(ServiceException):
    code = "InvalidChangeSetStatus"


@dataclass
class Definition:
    """One StackDefinition: the stack (existing, or to create) and its new template."""

    requested: str
    name: str
    stack_id: str
    body: str = ""
    template: dict[str, Any] = field(default_factory=dict)
    #: The existing stack (for one the refactor creates: once the execution created it).
    stack: Stack | None = None
    #: Whether the refactor creates the stack (EnableStackCreation).
    new: bool = False


@dataclass
class Move:
    """A resource that changes stack or logical id."""

    source: Definition
    source_id: str
    destination: Definition
    destination_id: str
    resource_type: str
    physical_id: str
    detection: str  # AUTO or MANUAL


@dataclass
class Refactor:
    id: str
    account: str
    region: str
    description: str | None
    enable_stack_creation: bool
    definitions: list[Definition]
    created: datetime
    mappings: list[dict[str, Any]] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)
    status: str = "CREATE_IN_PROGRESS"
    status_reason: str | None = None
    execution_status: str = "UNAVAILABLE"
    execution_status_reason: str | None = None
    #: Each existing stack's state when the refactor was created (OBSOLETE once it differs).
    fingerprints: dict[str, tuple[int, str]] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "StackRefactorId": self.id,
            "StackIds": [definition.stack_id for definition in self.definitions],
            "Status": self.status,
            "ExecutionStatus": self.execution_status,
        }
        if self.description:
            answer["Description"] = self.description
        if self.status_reason:
            answer["StatusReason"] = self.status_reason
        if self.execution_status_reason:
            answer["ExecutionStatusReason"] = self.execution_status_reason
        return answer

    def summary(self) -> dict[str, Any]:
        answer = self.describe()
        del answer["StackIds"]
        return answer


def install() -> None:
    """Adds the stack refactoring APIs; safe to call more than once."""
    global _installed
    if _installed:
        return
    CloudFormationResponse.create_stack_refactor = _create_stack_refactor
    CloudFormationResponse.describe_stack_refactor = _describe_stack_refactor
    CloudFormationResponse.execute_stack_refactor = _execute_stack_refactor
    CloudFormationResponse.list_stack_refactor_actions = _list_stack_refactor_actions
    CloudFormationResponse.list_stack_refactors = _list_stack_refactors
    _wrap(CloudFormationBackend, "execute_change_set", _execute_change_set)
    authorization.STACK_RESOURCES.append(stack_resources)
    _installed = True


def refactors(backend: CloudFormationBackend) -> dict[str, Refactor]:
    found = backend.__dict__.get("_localaws_stack_refactors")
    if found is None:
        found = backend.__dict__["_localaws_stack_refactors"] = {}
    return found


def refactor_of(backend: CloudFormationBackend, refactor_id: str | None) -> Refactor:
    found = refactors(backend).get(refactor_id or "")
    if found is None:
        raise StackRefactorNotFound(f"Stack refactor [{refactor_id}] does not exist")
    return found


# --- the API --------------------------------------------------------------------------------------


def _create_stack_refactor(response: CloudFormationResponse) -> ActionResult:
    backend = response.cloudformation_backend
    definitions = response._get_param("StackDefinitions") or []
    mappings = response._get_param("ResourceMappings") or []
    enable = str(response._get_param("EnableStackCreation", False)).lower() == "true"
    well_formed(definitions)
    with _lock:
        refactor = Refactor(
            id=str(uuid.uuid4()),
            account=backend.account_id,
            region=backend.region_name,
            description=response._get_param("Description"),
            enable_stack_creation=enable,
            definitions=[],
            created=utcnow(),
            mappings=list(mappings),
        )
        refactors(backend)[refactor.id] = refactor
        try:
            findings = plan(backend, refactor, definitions)
        except Exception as error:  # noqa: BLE001 - a bug here fails the refactor, not the call
            logger.exception("localaws: validating stack refactor %s failed", refactor.id)
            findings = [f"Internal failure validating the refactor: {reason_of(error)}"]
        if findings:
            refactor.status, refactor.execution_status = "CREATE_FAILED", "UNAVAILABLE"
            refactor.status_reason = "; ".join(findings)
            refactor.moves = []
        else:
            refactor.status, refactor.execution_status = "CREATE_COMPLETE", "AVAILABLE"
            refactor.fingerprints = {
                definition.stack_id: fingerprint(definition.stack)
                for definition in refactor.definitions
                if definition.stack is not None
            }
    return ActionResult({"StackRefactorId": refactor.id})


def well_formed(definitions: list[dict[str, Any]]) -> None:
    """What makes the request itself invalid: a ValidationError of the call."""
    if not definitions:
        raise ValidationError(message="StackDefinitions must list at least one stack.")
    if len(definitions) > MAX_STACKS:
        raise ValidationError(
            message=f"A stack refactor can include at most {MAX_STACKS} stacks; "
            f"StackDefinitions lists {len(definitions)}."
        )
    seen: set[str] = set()
    for index, definition in enumerate(definitions, 1):
        name = definition.get("StackName")
        if not name:
            raise ValidationError(message=f"StackDefinitions member {index} has no StackName.")
        if bool(definition.get("TemplateBody")) == bool(definition.get("TemplateURL")):
            raise ValidationError(
                message=f"Specify exactly one of TemplateBody or TemplateURL for stack [{name}]."
            )
        if name in seen:
            raise ValidationError(message=f"Stack [{name}] is listed more than once.")
        seen.add(name)


def _describe_stack_refactor(response: CloudFormationResponse) -> ActionResult:
    backend = response.cloudformation_backend
    with _lock:
        refactor = refactor_of(backend, response._get_param("StackRefactorId"))
        refresh(backend, refactor)
        return ActionResult(refactor.describe())


def _list_stack_refactors(response: CloudFormationResponse) -> ActionResult:
    backend = response.cloudformation_backend
    wanted = set(response._get_param("ExecutionStatusFilter") or [])
    with _lock:
        found = []
        for refactor in refactors(backend).values():
            refresh(backend, refactor)
            if not wanted or refactor.execution_status in wanted:
                found.append(refactor.summary())
    page, token = paged(found, response)
    return ActionResult({"StackRefactorSummaries": page, "NextToken": token})


def _list_stack_refactor_actions(response: CloudFormationResponse) -> ActionResult:
    backend = response.cloudformation_backend
    with _lock:
        refactor = refactor_of(backend, response._get_param("StackRefactorId"))
        refresh(backend, refactor)
        actions = actions_of(refactor)
    page, token = paged(actions, response)
    return ActionResult({"StackRefactorActions": page, "NextToken": token})


def paged(items: list[Any], response: CloudFormationResponse) -> tuple[list[Any], str | None]:
    token = response._get_param("NextToken")
    size = response._get_param("MaxResults") or PAGE_SIZE
    try:
        offset = int(token) if token else 0
        size = int(size)
    except ValueError:
        raise ValidationError(message=f"Invalid NextToken: {token}") from None
    if offset < 0 or size < 1:
        raise ValidationError(message=f"Invalid NextToken: {token}")
    page = items[offset : offset + size]
    return page, (str(offset + size) if offset + size < len(items) else None)


def actions_of(refactor: Refactor) -> list[dict[str, Any]]:
    if refactor.status != "CREATE_COMPLETE":
        return []
    actions: list[dict[str, Any]] = [
        {
            "Action": "CREATE",
            "Entity": "STACK",
            "Description": f"Stack {definition.name} will be created with the resources moved "
            "into it.",
            "Detection": "MANUAL",
        }
        for definition in refactor.definitions
        if definition.new
    ]
    for move in refactor.moves:
        action: dict[str, Any] = {
            "Action": "MOVE",
            "Entity": "RESOURCE",
            "Description": MOVE_DESCRIPTION,
            "Detection": move.detection,
            "TagResources": [],
            "UntagResources": [],
            "ResourceMapping": {
                "Source": {
                    "StackName": move.source.stack_id,
                    "LogicalResourceId": move.source_id,
                },
                "Destination": {
                    "StackName": move.destination.stack_id,
                    "LogicalResourceId": move.destination_id,
                },
            },
        }
        if move.physical_id:
            action["PhysicalResourceId"] = move.physical_id
        actions.append(action)
    return actions


def _execute_stack_refactor(response: CloudFormationResponse) -> ActionResult:
    backend = response.cloudformation_backend
    with _lock:
        refactor = refactor_of(backend, response._get_param("StackRefactorId"))
        refresh(backend, refactor)
        if refactor.status != "CREATE_COMPLETE" or refactor.execution_status != "AVAILABLE":
            raise ValidationError(
                message=f"Stack refactor [{refactor.id}] cannot be executed in its current status "
                f"of [{refactor.status}] and execution status of [{refactor.execution_status}]"
            )
        refactor.execution_status = "EXECUTE_IN_PROGRESS"
        try:
            execute(backend, refactor)
        except Exception as error:  # noqa: BLE001 - reported as the execution's failure
            logger.exception("localaws: executing stack refactor %s failed", refactor.id)
            refactor.execution_status = "EXECUTE_FAILED"
            refactor.execution_status_reason = reason_of(error)
        else:
            refactor.execution_status = "EXECUTE_COMPLETE"
    return EmptyResult()


def _execute_change_set(original, backend: CloudFormationBackend, change_set_name, stack_name=None):
    change_set: ChangeSet = backend.describe_change_set(change_set_name)
    if change_set.execution_status == "OBSOLETE":
        raise InvalidChangeSetStatus(
            f"ChangeSet [{change_set.stack_id}] cannot be executed in its current execution "
            f"status of [OBSOLETE]"
        )
    return original(backend, change_set_name, stack_name)


# --- OBSOLETE -------------------------------------------------------------------------------------


def fingerprint(stack: Stack) -> tuple[int, str]:
    """What changes with any operation on the stack: its events (every operation records some)
    and its status."""
    return len(stack.events), stack.status


def refresh(backend: CloudFormationBackend, refactor: Refactor) -> None:
    """Makes an AVAILABLE refactor OBSOLETE when one of its stacks changed since its creation."""
    if refactor.execution_status != "AVAILABLE":
        return
    for definition in refactor.definitions:
        if definition.new:
            if live_stack(backend, definition.name) is not None:
                changed = f"Stack [{definition.name}] was created after the refactor."
            else:
                continue
        elif backend.stacks.get(definition.stack_id) is not definition.stack or (
            definition.stack.status == "DELETE_COMPLETE"
        ):
            changed = f"Stack [{definition.stack_id}] was deleted after the refactor was created."
        elif fingerprint(definition.stack) != refactor.fingerprints.get(definition.stack_id):
            changed = f"Stack [{definition.stack_id}] changed after the refactor was created."
        else:
            continue
        refactor.execution_status = "OBSOLETE"
        refactor.execution_status_reason = changed
        return


# --- validation -------------------------------------------------------------------------------------


def live_stack(backend: CloudFormationBackend, name_or_id: str) -> Stack | None:
    found = backend.stacks.get(name_or_id)
    if found is not None and found.status != "DELETE_COMPLETE":
        return found
    return next(
        (
            stack
            for stack in backend.stacks.values()
            if stack.name == name_or_id and stack.status != "DELETE_COMPLETE"
        ),
        None,
    )


def plan(
    backend: CloudFormationBackend, refactor: Refactor, requested: list[dict[str, Any]]
) -> list[str]:
    """Validates the refactor and records its moves; answers the findings (none: valid)."""
    findings: list[str] = []
    partition = get_partition(backend.region_name)
    for item in requested:
        name = item["StackName"]
        stack = live_stack(backend, name)
        if stack is None:
            if name.startswith("arn:") or not refactor.enable_stack_creation:
                findings.append(
                    f"Stack [{name}] does not exist"
                    + ("" if name.startswith("arn:") else " (EnableStackCreation is false)")
                )
                continue
            definition = Definition(
                name,
                name,
                generate_stack_id(name, backend.region_name, backend.account_id),
                new=True,
            )
        else:
            definition = Definition(name, stack.name, stack.stack_id, stack=stack)
        refactor.definitions.append(definition)
        try:
            definition.body = item.get("TemplateBody") or get_stack_from_s3_url(
                item["TemplateURL"], account_id=backend.account_id, partition=partition
            )
        except Exception as error:  # noqa: BLE001 - an unreadable URL is a finding
            findings.append(f"{definition.stack_id}: TemplateURL cannot be read: {reason_of(error)}")
            continue
        try:
            template = Stack.parse_template(definition.body)
        except Exception as error:  # noqa: BLE001
            findings.append(f"{definition.stack_id}: Template format error: {reason_of(error)}")
            continue
        if not isinstance(template, dict):
            findings.append(f"{definition.stack_id}: Template format error: not a JSON or YAML object")
            continue
        definition.template = template
    if findings:
        return findings
    # The same stack twice (by name and by ARN).
    ids = [definition.stack_id for definition in refactor.definitions]
    for stack_id in sorted({i for i in ids if ids.count(i) > 1}):
        findings.append(f"{stack_id}: the stack is listed more than once")
    for definition in refactor.definitions:
        findings += stack_findings(definition)
    if findings:
        return findings
    moves, findings = assign(refactor)
    if findings:
        return findings
    for definition in refactor.definitions:
        findings += template_findings(definition)
    findings += move_findings(refactor, moves)
    if findings:
        return findings
    findings += resolution_findings(backend, refactor, moves)
    if findings:
        return findings
    refactor.moves = [move for move in moves if is_move(move)]
    if not refactor.moves and not any(definition.new for definition in refactor.definitions):
        return ["The stack refactor neither moves nor renames a resource."]
    return []


def stack_findings(definition: Definition) -> list[str]:
    """The stack's status, its stack policy, an empty template, a created stack's template."""
    found = []
    prefix = f"{definition.stack_id}: "
    stack = definition.stack
    if stack is not None:
        if stack.status not in REFACTORABLE:
            found.append(f"{prefix}Stack [{stack.name}] is in {stack.status} state and can not "
                         "be refactored")
        if getattr(stack, "policy", ""):
            found.append(
                f"{prefix}Stack refactor doesn't support stacks that have stack policies attached"
            )
    resources = definition.template.get("Resources")
    if not isinstance(resources, dict) or not resources:
        found.append(
            f"{prefix}CloudFormation doesn't support empty stacks: the template of stack "
            f"[{definition.name}] has no resources"
        )
    elif any(not isinstance(body, dict) or not isinstance(body.get("Type"), str)
             for body in resources.values()):
        found.append(f"{prefix}Template format error: every resource needs a Type")
    if definition.new:
        for section in ("Parameters", "Rules"):
            if definition.template.get(section):
                found.append(
                    f"{prefix}A stack created by a stack refactor cannot have {section}"
                )
        used = sorted(set(template_references(definition.template)) & set(STACK_PSEUDO))
        if used:
            found.append(
                f"{prefix}A stack refactor cannot create stack [{definition.name}]: its template "
                f"refers to {', '.join(used)}, whose value differs between stacks"
            )
    return found


def current_resources(definition: Definition) -> dict[str, Any]:
    if definition.stack is None:
        return {}
    return definition.stack.resource_map._resource_json_map or {}


def new_resources(definition: Definition) -> dict[str, Any]:
    return definition.template.get("Resources") or {}


def is_move(move: Move) -> bool:
    return move.source is not move.destination or move.source_id != move.destination_id


def assign(refactor: Refactor) -> tuple[list[Move], list[str]]:
    """Where each resource of the current templates goes: explicit mappings, then logical ids
    kept in their stack, then logical ids that left one stack for another."""
    findings: list[str] = []
    by_name: dict[str, Definition] = {}
    for definition in refactor.definitions:
        by_name[definition.requested] = definition
        by_name[definition.name] = definition
        by_name[definition.stack_id] = definition
    # destination (stack id, logical id) -> (source definition, source logical id, detection)
    assigned: dict[tuple[str, str], tuple[Definition, str, str]] = {}
    used: set[tuple[str, str]] = set()
    for mapping in refactor.mappings:
        source, destination = mapping.get("Source") or {}, mapping.get("Destination") or {}
        source_stack = by_name.get(source.get("StackName", ""))
        destination_stack = by_name.get(destination.get("StackName", ""))
        source_id = source.get("LogicalResourceId", "")
        destination_id = destination.get("LogicalResourceId", "")
        if source_stack is None or destination_stack is None:
            missing = source.get("StackName") if source_stack is None else destination.get("StackName")
            findings.append(
                f"The resource mapping {source.get('StackName')}/{source_id} -> "
                f"{destination.get('StackName')}/{destination_id} names stack [{missing}], which "
                "is not in StackDefinitions"
            )
            continue
        if source_id not in current_resources(source_stack):
            findings.append(
                f"{source_stack.stack_id}: Resource [{source_id}] in a resource mapping does not "
                f"exist in stack [{source_stack.name}]"
            )
            continue
        if destination_id not in new_resources(destination_stack):
            findings.append(
                f"{destination_stack.stack_id}: Resource [{destination_id}] in a resource "
                f"mapping is not in the new template of stack [{destination_stack.name}]"
            )
            continue
        key = (destination_stack.stack_id, destination_id)
        if (source_stack.stack_id, source_id) in used:
            findings.append(
                f"{source_stack.stack_id}: You can't refactor the same resource into multiple "
                f"stacks: resource [{source_id}] is the source of more than one resource mapping"
            )
            continue
        if key in assigned:
            findings.append(
                f"{destination_stack.stack_id}: Resource [{destination_id}] is the destination "
                "of more than one resource mapping"
            )
            continue
        assigned[key] = (source_stack, source_id, "MANUAL")
        used.add((source_stack.stack_id, source_id))
    if findings:
        return [], findings
    # Kept: the same logical id in the same stack (unless mapped elsewhere).
    for definition in refactor.definitions:
        for logical_id in new_resources(definition):
            key = (definition.stack_id, logical_id)
            if key in assigned or key in used or logical_id not in current_resources(definition):
                continue
            assigned[key] = (definition, logical_id, "AUTO")
            used.add(key)
    # Moved: a logical id that left another stack.
    for definition in refactor.definitions:
        for logical_id in new_resources(definition):
            key = (definition.stack_id, logical_id)
            if key in assigned:
                continue
            candidates = [
                other
                for other in refactor.definitions
                if other is not definition and logical_id in current_resources(other)
            ]
            free = [other for other in candidates if (other.stack_id, logical_id) not in used]
            if len(free) == 1:
                assigned[key] = (free[0], logical_id, "AUTO")
                used.add((free[0].stack_id, logical_id))
            elif len(free) > 1:
                findings.append(
                    f"{definition.stack_id}: Resource [{logical_id}] exists in stacks "
                    f"[{', '.join(other.name for other in free)}]; give a resource mapping to say "
                    "which one moves"
                )
            elif candidates:
                findings.append(
                    f"{definition.stack_id}: You can't refactor the same resource into multiple "
                    f"stacks: resource [{logical_id}] of stack [{candidates[0].name}] also stays "
                    "there or moves elsewhere"
                )
            else:
                findings.append(
                    f"{definition.stack_id}: Resource [{logical_id}] is new: refactor operations "
                    "don't allow new resource creations (a renamed resource needs a resource "
                    "mapping)"
                )
    for definition in refactor.definitions:
        for logical_id in current_resources(definition):
            if (definition.stack_id, logical_id) not in used:
                findings.append(
                    f"{definition.stack_id}: Resource [{logical_id}] of stack [{definition.name}] "
                    "is in none of the new templates: refactor operations don't allow resource "
                    "deletions"
                )
    if findings:
        return [], findings
    moves = []
    for definition in refactor.definitions:
        for logical_id in new_resources(definition):
            source, source_id, detection = assigned[(definition.stack_id, logical_id)]
            resource = current_object(source, source_id)
            moves.append(
                Move(
                    source=source,
                    source_id=source_id,
                    destination=definition,
                    destination_id=logical_id,
                    resource_type=current_resources(source)[source_id].get("Type", ""),
                    physical_id=str(getattr(resource, "physical_resource_id", "") or ""),
                    detection=detection,
                )
            )
    return moves, []


def current_object(definition: Definition, logical_id: str) -> Any:
    """The stack's record of the resource (a handler, moto's model), None if it was not created."""
    if definition.stack is None:
        return None
    found = definition.stack.resource_map._parsed_resources.get(logical_id)
    return found if engine.is_resource(found) else None


def template_findings(definition: Definition) -> list[str]:
    """Parameters, Conditions and Mappings neither added nor changed; every name a template
    refers to defined in it."""
    found = []
    prefix = f"{definition.stack_id}: "
    template = definition.template
    if definition.stack is not None:
        current = definition.stack.template_dict or {}
        for section in ("Parameters", "Conditions", "Mappings"):
            before = current.get(section) or {}
            for name, value in (template.get(section) or {}).items():
                if name not in before:
                    found.append(
                        f"{prefix}You can't add new {section.lower()} during a stack refactor: "
                        f"{section[:-1].lower()} [{name}] is new"
                    )
                elif before[name] != value:
                    found.append(
                        f"{prefix}You can't change {section.lower()} during a stack refactor: "
                        f"{section[:-1].lower()} [{name}] changed"
                    )
    resources = new_resources(definition)
    known = set(resources) | set(template.get("Parameters") or {})
    conditions = set(template.get("Conditions") or {})
    for block in ("Resources", "Outputs"):
        unresolved = sorted(
            name
            for name in set(template_references(template.get(block) or {}))
            if name not in known and not name.startswith("AWS::")
        )
        if unresolved:
            found.append(
                f"{prefix}Template format error: Unresolved resource dependencies "
                f"[{', '.join(unresolved)}] in the {block} block of the template"
            )
    for logical_id, body in resources.items():
        depends = body.get("DependsOn") or []
        for name in [depends] if isinstance(depends, str) else depends:
            if name not in resources:
                found.append(
                    f"{prefix}Template format error: Unresolved resource dependencies [{name}] "
                    "in the Resources block of the template"
                )
        if body.get("Condition") and body["Condition"] not in conditions:
            found.append(
                f"{prefix}Template format error: Unresolved condition dependencies "
                f"[{body['Condition']}] in the Resources block of the template"
            )
    return found


def move_findings(refactor: Refactor, moves: list[Move]) -> list[str]:
    """Types that cannot move, pseudo parameters whose value changes, Type and Metadata kept."""
    found = []
    for move in moves:
        before = current_resources(move.source)[move.source_id]
        after = new_resources(move.destination)[move.destination_id]
        prefix = f"{move.destination.stack_id}: Resource [{move.destination_id}]"
        if before.get("Type") != after.get("Type"):
            found.append(
                f"{prefix} is of type {after.get('Type')}, its source [{move.source_id}] in stack "
                f"[{move.source.name}] of type {before.get('Type')}: refactor operations don't "
                "allow changes to resource configurations"
            )
            continue
        renames = renames_into(moves, move)
        if renamed(before.get("Metadata"), renames) != after.get("Metadata"):
            found.append(
                f"{prefix}: its Metadata differs from that of [{move.source_id}] in stack "
                f"[{move.source.name}]: refactor operations don't allow changes to resource "
                "configurations"
            )
        if not is_move(move):
            continue
        resource_type = after.get("Type", "")
        if resource_type in UNSUPPORTED or resource_type.startswith("Custom::"):
            found.append(f"{prefix}: resource type {resource_type} isn't supported for stack "
                         "refactoring")
        if move.source is not move.destination:
            names = set(template_references(after))
            pseudo = sorted(names & set(STACK_PSEUDO))
            if "AWS::NotificationARNs" in names and notification_arns(move.source) != (
                notification_arns(move.destination)
            ):
                pseudo.append("AWS::NotificationARNs")
            if pseudo:
                found.append(
                    f"{prefix}: You can't refactor resources that refer to pseudo parameters "
                    f"whose values differ between the source and destination stacks "
                    f"({', '.join(pseudo)})"
                )
    return found


def notification_arns(definition: Definition) -> list[str]:
    return sorted(definition.stack.notification_arns or []) if definition.stack else []


def renames_into(moves: list[Move], move: Move) -> dict[str, str]:
    """Logical ids of the move's source stack as they are named in its destination stack (the
    resources that went from one to the other)."""
    return {
        other.source_id: other.destination_id
        for other in moves
        if other.source is move.source and other.destination is move.destination
    }


# --- resolving the new templates -----------------------------------------------------------------------


def resolution_findings(
    backend: CloudFormationBackend, refactor: Refactor, moves: list[Move]
) -> list[str]:
    """Each resource's properties, resolved in its new template, equal those it has; exports."""
    findings: list[str] = []
    involved = {definition.stack_id for definition in refactor.definitions}
    exports: dict[str, Any] = {
        name: export
        for name, export in backend.exports.items()
        if export.exporting_stack_id not in involved
    }
    scratch: dict[str, parsing.ResourceMap] = {}
    for definition in refactor.definitions:
        try:
            scratch[definition.stack_id] = scratch_map(backend, definition, exports)
        except Exception as error:  # noqa: BLE001 - a template error is a finding
            findings.append(f"{definition.stack_id}: Template error: {reason_of(error)}")
    if findings:
        return findings
    for move in moves:
        resource = current_object(move.source, move.source_id)
        if resource is not None:
            scratch[move.destination.stack_id]._parsed_resources[move.destination_id] = resource
    new_exports, export_findings = resolve_exports(refactor, scratch, exports)
    findings += export_findings
    findings += export_conflicts(backend, refactor, new_exports)
    for definition in refactor.definitions:
        for name in sorted(imported_names(definition.template)):
            if name not in exports:
                findings.append(f"{definition.stack_id}: No export named {name} found.")
    if findings:
        return findings
    for move in moves:
        before = current_resources(move.source)[move.source_id]
        after = new_resources(move.destination)[move.destination_id]
        old = old_properties(move)
        new = resolved(after.get("Properties") or {}, scratch[move.destination.stack_id])
        if old is not None and new is not None:
            same = old == new
        else:
            same = renamed(before.get("Properties") or {}, renames_into(moves, move)) == (
                after.get("Properties") or {}
            )
        if not same:
            findings.append(
                f"{move.destination.stack_id}: Resource [{move.destination_id}]: its properties "
                f"differ from those of [{move.source_id}] in stack [{move.source.name}]: "
                "refactor operations don't allow changes to resource configurations"
            )
    return findings


def scratch_map(
    backend: CloudFormationBackend, definition: Definition, exports: dict[str, Any]
) -> parsing.ResourceMap:
    """The new template with its parameters, mappings and conditions loaded, no resource built."""
    stack = definition.stack
    parameters = dict(stack.resource_map.input_parameters) if stack is not None else {}
    scratch = parsing.ResourceMap(
        definition.stack_id,
        definition.name,
        parameters,
        {},
        region_name=backend.region_name,
        account_id=backend.account_id,
        template=definition.template,
        cross_stack_resources=exports,
    )
    scratch.load_mapping()
    scratch.load_parameters()
    scratch.load_conditions()
    return scratch


def old_properties(move: Move) -> Any:
    """The properties the resource has now, resolved (what a handler last applied)."""
    resource = current_object(move.source, move.source_id)
    if isinstance(resource, ResourceHandler):
        return resource.properties
    stack = move.source.stack
    if stack is None:
        return None
    body = current_resources(move.source)[move.source_id]
    return resolved(body.get("Properties") or {}, stack.resource_map)


def resolved(value: Any, resource_map: parsing.ResourceMap) -> Any:
    """`value` with intrinsic functions resolved, or None where it cannot be resolved before the
    execution (it names something not built, which the lazy map would create)."""
    if any(name not in resource_map._parsed_resources for name in template_references(value)):
        return None
    try:
        return parsing.clean_json(copy.deepcopy(value), resource_map)
    except Exception:  # noqa: BLE001 - compared as text instead
        return None


def resolve_exports(
    refactor: Refactor, scratch: dict[str, parsing.ResourceMap], exports: dict[str, Any]
) -> tuple[dict[str, tuple[str, Any]], list[str]]:
    """The exports the new templates make (name -> (stack id, value)), added to `exports` as they
    resolve (an export may import another)."""
    pending = [
        (definition, key, output)
        for definition in refactor.definitions
        for key, output in (definition.template.get("Outputs") or {}).items()
        if isinstance(output, dict) and output.get("Export")
    ]
    made: dict[str, tuple[str, Any]] = {}
    findings: list[str] = []
    for _ in range(len(pending) + 1):
        left = []
        for definition, key, output in pending:
            resource_map = scratch[definition.stack_id]
            name = resolved((output.get("Export") or {}).get("Name"), resource_map)
            value = resolved(output.get("Value"), resource_map)
            if name is None or value is None:
                left.append((definition, key, output))
                continue
            if name in exports:
                owner = made[name][0] if name in made else exports[name].exporting_stack_id
                findings.append(
                    f"{definition.stack_id}: Export with name {name} is already exported by "
                    f"stack {owner}"
                )
                continue
            made[name] = (definition.stack_id, value)
            exports[name] = Export(definition.stack_id, name, value)
        if not left or len(left) == len(pending):
            break  # done, or what is left cannot be resolved before the execution (not checked)
        pending = left
    return made, findings


def export_conflicts(
    backend: CloudFormationBackend, refactor: Refactor, made: dict[str, tuple[str, Any]]
) -> list[str]:
    """Exports of these stacks that go away or change while a stack outside imports them."""
    involved = {definition.stack_id for definition in refactor.definitions}
    before = {
        name: export
        for name, export in backend.exports.items()
        if export.exporting_stack_id in involved
    }
    findings = []
    for stack in backend.stacks.values():
        if stack.stack_id in involved or stack.status == "DELETE_COMPLETE":
            continue
        for name in imported_names(stack.template_dict or {}):
            export = before.get(name)
            if export is None:
                continue
            if name not in made:
                findings.append(
                    f"{export.exporting_stack_id}: Cannot delete export {name} as it is in use by "
                    f"{stack.name}"
                )
            elif made[name][1] != export.value:
                findings.append(
                    f"{export.exporting_stack_id}: Cannot update export {name} as it is in use "
                    f"by {stack.name}"
                )
    return findings


def imported_names(value: Any) -> set[str]:
    """The export names a template imports literally."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Fn::ImportValue" and isinstance(item, str):
                found.add(item)
            else:
                found |= imported_names(item)
    elif isinstance(value, list):
        for item in value:
            found |= imported_names(item)
    return found


# --- template references ------------------------------------------------------------------------------

SUB_NAME = re.compile(r"\$\{([^!}][^}]*)\}")


def template_references(value: Any) -> list[str]:
    """Names a template fragment refers to: Ref and Fn::GetAtt targets, `${Name}` in Fn::Sub
    (not the names its own variable map defines)."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.append(item)
            elif key == "Fn::GetAtt":
                target = item[0] if isinstance(item, list) and item else item
                if isinstance(target, str):
                    found.append(target.split(".")[0])
            elif key == "Fn::Sub":
                text, variables = (item[0], item[1] if len(item) > 1 else {}) if isinstance(
                    item, list
                ) else (item, {})
                if isinstance(text, str):
                    found += [
                        name.split(".")[0]
                        for name in SUB_NAME.findall(text)
                        if name.split(".")[0] not in (variables or {})
                    ]
                found += template_references(variables)
            else:
                found += template_references(item)
    elif isinstance(value, list):
        for item in value:
            found += template_references(item)
    return found


def renamed(value: Any, names: dict[str, str]) -> Any:
    """A template fragment with the logical ids in `names` renamed (Ref, Fn::GetAtt, Fn::Sub)."""
    if not names:
        return value
    if isinstance(value, list):
        return [renamed(item, names) for item in value]
    if not isinstance(value, dict):
        return value
    answer: dict[str, Any] = {}
    for key, item in value.items():
        if key == "Ref" and isinstance(item, str):
            answer[key] = names.get(item, item)
        elif key == "Fn::GetAtt" and isinstance(item, list) and item:
            answer[key] = [names.get(item[0], item[0])] + list(item[1:])
        elif key == "Fn::GetAtt" and isinstance(item, str):
            head, _, rest = item.partition(".")
            answer[key] = f"{names.get(head, head)}.{rest}" if rest else names.get(head, head)
        elif key == "Fn::Sub":
            text = item[0] if isinstance(item, list) else item
            if isinstance(text, str):
                text = SUB_NAME.sub(
                    lambda m: "${"
                    + names.get(m.group(1).split(".")[0], m.group(1).split(".")[0])
                    + m.group(1)[len(m.group(1).split(".")[0]) :]
                    + "}",
                    text,
                )
            answer[key] = [text, renamed(item[1], names)] if isinstance(item, list) else text
        else:
            answer[key] = renamed(item, names)
    return answer


# --- execution ------------------------------------------------------------------------------------------


def execute(backend: CloudFormationBackend, refactor: Refactor) -> None:
    """Moves the resources between the stacks' records, creating the new stacks first."""
    stacks: dict[str, Stack] = {}
    for definition in refactor.definitions:
        if definition.new:
            stack = Stack(
                stack_id=definition.stack_id,
                name=definition.name,
                template=definition.body,
                parameters={},
                account_id=backend.account_id,
                region_name=backend.region_name,
                cross_stack_resources=backend.exports,
            )
            backend.stacks[stack.stack_id] = stack
            definition.stack = stack
            stack.status = "CREATE_IN_PROGRESS"
            stack._add_stack_event("CREATE_IN_PROGRESS", resource_status_reason="User Initiated")
        else:
            stack = definition.stack
            stack.status = "UPDATE_IN_PROGRESS"
            stack._add_stack_event("UPDATE_IN_PROGRESS", resource_status_reason="User Initiated")
        stacks[definition.stack_id] = stack
    # Take every moving resource out of its source first (resources may swap places).
    carried: dict[tuple[str, str], Any] = {}
    for move in refactor.moves:
        resource_map = stacks[move.source.stack_id].resource_map
        carried[(move.destination.stack_id, move.destination_id)] = (
            resource_map._parsed_resources.pop(move.source_id, None)
        )
        drift.stack_drift(stacks[move.source.stack_id]).resources.pop(move.source_id, None)
    for definition in refactor.definitions:
        if not definition.new:
            retemplate(stacks[definition.stack_id], definition.body)
    for (stack_id, logical_id), resource in carried.items():
        if resource is None:
            continue
        stack = stacks[stack_id]
        body = stack.resource_map._resource_json_map[logical_id]
        stack.resource_map._parsed_resources[logical_id] = resource
        resource.logical_resource_id = logical_id
        if isinstance(resource, ResourceHandler):
            resource.logical_id = logical_id
            resource.stack_id = stack_id
            resource.deletion_policy = body.get("DeletionPolicy", "Delete")
            resource.update_replace_policy = body.get("UpdateReplacePolicy", "Delete")
    for name, export in list(backend.exports.items()):
        if export.exporting_stack_id in stacks:
            del backend.exports[name]
    for stack in stacks.values():
        stack.description = stack.template_dict.get("Description")
        stack.output_map = stack._create_output_map()
    for stack in stacks.values():
        for export in stack.exports:
            backend.exports[export.name] = export
    for move in refactor.moves:
        stack = stacks[move.destination.stack_id]
        for status in ("IMPORT_IN_PROGRESS", "IMPORT_COMPLETE"):
            stack.events.append(
                Event(
                    stack_id=stack.stack_id,
                    stack_name=stack.name,
                    logical_resource_id=move.destination_id,
                    physical_resource_id=move.physical_id,
                    resource_type=move.resource_type,
                    resource_status=status,
                    resource_status_reason=(
                        f"Resource moved from stack {move.source.name} "
                        f"({move.source_id}) by stack refactor {refactor.id}"
                        if status == "IMPORT_IN_PROGRESS"
                        else None
                    ),
                    resource_properties=None,
                )
            )
    for definition in refactor.definitions:
        stack = stacks[definition.stack_id]
        final = "CREATE_COMPLETE" if definition.new else "UPDATE_COMPLETE"
        stack.status = final
        stack._add_stack_event(final)
    for change_set in backend.change_sets.values():
        if change_set.stack_id in stacks and change_set.execution_status == "AVAILABLE":
            change_set.execution_status = "OBSOLETE"


def retemplate(stack: Stack, body: str) -> None:
    """The stack's template, parameters, mappings and conditions as the new template says (the
    resource records are moved by the caller)."""
    stack.template = body
    stack._parse_template()
    template = stack.template_dict
    wanted = set(template.get("Parameters") or {})
    stack.parameters = {key: value for key, value in stack.parameters.items() if key in wanted}
    resource_map = stack.resource_map
    resource_map._template = template
    resource_map._resource_json_map = template["Resources"]
    resource_map.input_parameters = {
        key: value for key, value in resource_map.input_parameters.items() if key in wanted
    }
    resource_map.resolved_parameters = {}
    resource_map.load_mapping()
    resource_map.load_parameters()
    resource_map.load_conditions()


# --- IAM: the stacks a request involves -----------------------------------------------------------


def stack_resources(
    action: str, parameters: dict[str, Any], region: str, account: str
) -> list[str] | None:
    """The stack ARNs a stack refactor request is authorized on (authorization.STACK_RESOURCES)."""
    operation = action.split(":", 1)[-1]
    if operation not in ACTIONS or operation == "ListStackRefactors":
        return None
    backend = cloudformation_backends[account][region]
    partition = get_partition(region)
    if operation == "CreateStackRefactor":
        names = [
            value
            for key, value in sorted(parameters.items())
            if isinstance(value, str)
            and re.fullmatch(
                r"StackDefinitions\.member\.\d+\.StackName"
                r"|ResourceMappings\.member\.\d+\.(Source|Destination)\.StackName",
                key,
            )
        ]
        arns = []
        for name in names:
            stack = live_stack(backend, name)
            if stack is not None:
                arns.append(stack.stack_id)
            elif name.startswith("arn:"):
                arns.append(name)
            else:
                arns.append(f"arn:{partition}:cloudformation:{region}:{account}:stack/{name}/*")
        return list(dict.fromkeys(arns)) or None
    with _lock:
        refactor = refactors(backend).get(str(parameters.get("StackRefactorId") or ""))
    if refactor is None or not refactor.definitions:
        return None
    return list(dict.fromkeys(definition.stack_id for definition in refactor.definitions))
