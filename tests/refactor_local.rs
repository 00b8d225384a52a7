//! The move from the earlier layout (every model package group in one shared `registry` stack)
//! to the current one (each group in its model's pipeline stack) against the local AWS:
//! staging is put into the earlier layout with boto3 and given model package versions, then
//! `plan` shows the moves and `apply` refactors the stacks. The groups keep their ARNs, creation
//! times and versions; nothing is created or deleted; `registry` is gone and the plan is clean.

mod common;

use common::{LocalAws, project_copy, run_with};

const ACCOUNT: &str = "222222222222";
const REGION: &str = "eu-west-1";
const PREFIX: &str = "mlops-images-staging";

/// Moves every pipeline stack's `ModelPackageGroup` into a new `registry` stack under the
/// earlier layout's logical id (`PlantsModelPackageGroup`, …) with one stack refactor, as
/// CloudFormation documents it: the new stack first holds a placeholder (a stack cannot be
/// empty), which goes once the groups are in. Then registers two versions in each group.
const EARLIER_LAYOUT: &str = r#"
import json, time, boto3
from moto.cloudformation.models import Stack

PREFIX = "mlops-images-staging"
MODELS = ["plants", "trees", "flowers", "grasses"]
cfn = boto3.client("cloudformation")
s3 = boto3.client("s3")
bucket = f"{PREFIX}-artifacts-222222222222"

def template_of(name):
    body = cfn.get_template(StackName=name)["TemplateBody"]
    return body if isinstance(body, dict) else Stack.parse_template(body)

def source(name, template):
    body = json.dumps(template, separators=(",", ":"))
    if len(body.encode()) <= 51200:
        return {"TemplateBody": body}
    key = f"refactor-test/{name}.json"
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
    return {"TemplateURL": f"https://{bucket}.s3.amazonaws.com/{key}"}

def wait(name):
    for _ in range(600):
        status = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
        if not status.endswith("IN_PROGRESS"):
            return status
        time.sleep(0.1)
    raise SystemExit(f"{name} still in progress")

registry = f"{PREFIX}-registry"
placeholder = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Description": "mlops-images-staging model registry: one model package group per model",
    "Resources": {"Placeholder": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
}
cfn.create_stack(StackName=registry, TemplateBody=json.dumps(placeholder))
assert wait(registry) == "CREATE_COMPLETE"

definitions = []
mappings = []
for model in MODELS:
    name = f"{PREFIX}-pipeline-{model}"
    template = template_of(name)
    group = template["Resources"].pop("ModelPackageGroup")
    old_id = model.capitalize() + "ModelPackageGroup"
    placeholder["Resources"][old_id] = group
    definitions.append({"StackName": name, **source(name, template)})
    mappings.append({
        "Source": {"StackName": name, "LogicalResourceId": "ModelPackageGroup"},
        "Destination": {"StackName": registry, "LogicalResourceId": old_id},
    })
definitions.insert(0, {"StackName": registry, **source(registry, placeholder)})
refactor = cfn.create_stack_refactor(
    Description="the earlier layout", StackDefinitions=definitions, ResourceMappings=mappings
)["StackRefactorId"]
described = cfn.describe_stack_refactor(StackRefactorId=refactor)
assert described["Status"] == "CREATE_COMPLETE", described
cfn.execute_stack_refactor(StackRefactorId=refactor)
described = cfn.describe_stack_refactor(StackRefactorId=refactor)
assert described["ExecutionStatus"] == "EXECUTE_COMPLETE", described

del placeholder["Resources"]["Placeholder"]
cfn.update_stack(StackName=registry, TemplateBody=json.dumps(placeholder))
assert wait(registry) == "UPDATE_COMPLETE"
resources = cfn.describe_stack_resources(StackName=registry)["StackResources"]
assert sorted(r["LogicalResourceId"] for r in resources) == sorted(
    m.capitalize() + "ModelPackageGroup" for m in MODELS
), resources

sagemaker = boto3.client("sagemaker")
spec = {
    "Containers": [{
        "Image": "685385470294.dkr.ecr.eu-west-1.amazonaws.com/image-classification:1",
        "ModelDataUrl": f"s3://{bucket}/models/model.tar.gz",
    }],
    "SupportedContentTypes": ["application/x-image"],
    "SupportedResponseMIMETypes": ["application/json"],
}
for model in MODELS:
    for _ in range(2):
        sagemaker.create_model_package(
            ModelPackageGroupName=f"{PREFIX}-{model}",
            InferenceSpecification=spec,
            ModelApprovalStatus="PendingManualApproval",
        )
"#;

/// Each group's ARN, creation time and versions, one line per group.
const GROUPS: &str = r#"
import boto3
sagemaker = boto3.client("sagemaker")
for model in ["plants", "trees", "flowers", "grasses"]:
    name = f"mlops-images-staging-{model}"
    group = sagemaker.describe_model_package_group(ModelPackageGroupName=name)
    versions = sagemaker.list_model_packages(ModelPackageGroupName=name)["ModelPackageSummaryList"]
    print(group["ModelPackageGroupArn"], group["CreationTime"].isoformat(),
          sorted(v["ModelPackageArn"] for v in versions))
"#;

#[test]
fn an_applied_registry_stack_moves_into_the_pipeline_stacks_with_its_versions() {
    let aws = LocalAws::start(ACCOUNT);
    let environment = aws.environment(REGION);
    let project = project_copy();
    let run = |args: &[&str]| run_with(project.path(), args, &environment);
    let applied = run(&["apply", "staging", "--yes"]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);

    aws.boto3(REGION, EARLIER_LAYOUT);
    let before = aws.boto3(REGION, GROUPS);
    assert_eq!(before.lines().count(), 4, "{before}");
    assert!(
        before
            .lines()
            .all(|line| line.matches("model-package/").count() == 2),
        "two versions in each group:\n{before}"
    );

    let plan = run(&["plan", "staging", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    assert!(
        plan.stdout
            .contains("moves in from registry/PlantsModelPackageGroup"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("4 to move"), "{}", plan.stdout);
    assert!(plan.stdout.contains("1 retired"), "{}", plan.stdout);

    let moved = run(&["apply", "staging", "--yes"]);
    assert_eq!(moved.code, 0, "{}{}", moved.stdout, moved.stderr);

    let after = aws.boto3(REGION, GROUPS);
    assert_eq!(
        after, before,
        "same groups, same creation times, same versions"
    );
    let stacks = aws.boto3(
        REGION,
        &format!(
            "import boto3\n\
             cfn = boto3.client('cloudformation')\n\
             names = [s['StackName'] for s in cfn.describe_stacks()['Stacks']]\n\
             print('{PREFIX}-registry' in names)\n\
             for model in ['plants', 'trees', 'flowers', 'grasses']:\n\
             \x20   name = '{PREFIX}-pipeline-' + model\n\
             \x20   group = cfn.describe_stack_resource(StackName=name, LogicalResourceId='ModelPackageGroup')\n\
             \x20   events = cfn.describe_stack_events(StackName=name)['StackEvents']\n\
             \x20   statuses = sorted({{e['ResourceStatus'] for e in events if e['LogicalResourceId'] == 'ModelPackageGroup'}})\n\
             \x20   print(model, group['StackResourceDetail']['PhysicalResourceId'], statuses)"
        ),
    );
    let mut lines = stacks.lines();
    assert_eq!(
        lines.next(),
        Some("False"),
        "registry is deleted:\n{stacks}"
    );
    for line in lines {
        assert!(
            line.contains("IMPORT_COMPLETE"),
            "moved in by the refactor:\n{stacks}"
        );
        assert!(
            !line.contains("DELETE"),
            "no group deleted, before or after:\n{stacks}"
        );
    }

    let clean = run(&["plan", "staging", "--detailed-exitcode"]);
    assert_eq!(clean.code, 0, "{}{}", clean.stdout, clean.stderr);
}
