"""One stack with every resource type mlops-infra deploys: created, updated and deleted on the emulator.

Each phase is a module fixture that acts on the stack and then describes every resource through its
own service's API (never through CloudFormation), so the tests assert what the services hold. The
phases chain (create -> update -> delete), and each snapshot is taken before the next phase runs.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest
from botocore.exceptions import ClientError
from every_type import CLOUDWATCH_LOGS_FOR_API_GATEWAY, SAGEMAKER_FULL_ACCESS, render

STACK = "mlops-every-type"
DEFINITION_BUCKET = "mlops-pipeline-definitions"
DEFINITION_KEY = "pipelines/from-s3.json"
S3_PIPELINE_DEFINITION = {
    "Version": "2020-12-01",
    "Parameters": [],
    "Steps": [{"Name": "Stop", "Type": "Fail", "Arguments": {"ErrorMessage": "not yet"}}],
}
PARAMETERS = [
    {"ParameterKey": "DefinitionBucket", "ParameterValue": DEFINITION_BUCKET},
    {"ParameterKey": "DefinitionKey", "ParameterValue": DEFINITION_KEY},
]


def outputs_of(aws, stack: str) -> dict[str, str]:
    described = aws("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return {item["OutputKey"]: item["OutputValue"] for item in described.get("Outputs") or []}


def physical_ids(aws, stack: str) -> dict[str, str]:
    summaries = aws("cloudformation").list_stack_resources(StackName=stack)[
        "StackResourceSummaries"
    ]
    return {item["LogicalResourceId"]: item["PhysicalResourceId"] for item in summaries}


def describe_all(aws, out: dict[str, str]) -> dict[str, Any]:
    """What each resource's own service API reports, keyed by the template's logical id."""
    kms, s3, iam, sagemaker = aws("kms"), aws("s3"), aws("iam"), aws("sagemaker")
    bucket, role = out["ArtifactBucketRef"], out["ExecutionRoleRef"]
    api_id = out["RestApiRef"]
    scaling = aws("application-autoscaling")
    endpoint_resource = f"endpoint/{out['EndpointName']}/variant/AllTraffic"
    policy_arn = out["KmsUsePolicyRef"]
    managed_policy = iam.get_policy(PolicyArn=policy_arn)["Policy"]
    return {
        "Key": {
            **kms.describe_key(KeyId=out["KeyRef"])["KeyMetadata"],
            "Rotation": kms.get_key_rotation_status(KeyId=out["KeyRef"])["KeyRotationEnabled"],
            "Policy": json.loads(
                kms.get_key_policy(KeyId=out["KeyRef"], PolicyName="default")["Policy"]
            ),
        },
        "KeyAlias": {
            alias["AliasName"]: alias["TargetKeyId"]
            for alias in kms.list_aliases(KeyId=out["KeyRef"])["Aliases"]
        },
        "ArtifactBucket": {
            "Encryption": s3.get_bucket_encryption(Bucket=bucket)[
                "ServerSideEncryptionConfiguration"
            ],
            "Versioning": s3.get_bucket_versioning(Bucket=bucket).get("Status"),
            "PublicAccessBlock": s3.get_public_access_block(Bucket=bucket)[
                "PublicAccessBlockConfiguration"
            ],
            "Lifecycle": s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"],
            "Ownership": s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"],
            "Logging": s3.get_bucket_logging(Bucket=bucket)["LoggingEnabled"],
            "Tags": {
                tag["Key"]: tag["Value"] for tag in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
            },
        },
        "ArtifactBucketPolicy": json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]),
        "ExecutionRole": {
            **iam.get_role(RoleName=role)["Role"],
            "Attached": sorted(
                policy["PolicyArn"]
                for policy in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
            ),
            "Inline": sorted(iam.list_role_policies(RoleName=role)["PolicyNames"]),
            "ArtifactAccess": iam.get_role_policy(RoleName=role, PolicyName="artifact-access")[
                "PolicyDocument"
            ],
        },
        "PipelineStartPolicy": iam.get_role_policy(RoleName=role, PolicyName="start-pipeline")[
            "PolicyDocument"
        ],
        "KmsUsePolicy": {
            **managed_policy,
            "Document": iam.get_policy_version(
                PolicyArn=policy_arn, VersionId=managed_policy["DefaultVersionId"]
            )["PolicyVersion"]["Document"],
            "Roles": [
                item["RoleName"]
                for item in iam.list_entities_for_policy(PolicyArn=policy_arn)["PolicyRoles"]
            ],
        },
        "ModelPackageGroup": {
            **sagemaker.describe_model_package_group(ModelPackageGroupName=f"{STACK}-models"),
            "Tags": tags_of(sagemaker, out["ModelPackageGroupArn"]),
        },
        "TrainingPipeline": sagemaker.describe_pipeline(PipelineName=out["TrainingPipelineRef"]),
        "S3DefinedPipeline": sagemaker.describe_pipeline(PipelineName=out["S3DefinedPipelineRef"]),
        "Model": sagemaker.describe_model(ModelName=out["ModelName"]),
        "EndpointConfig": sagemaker.describe_endpoint_config(
            EndpointConfigName=out["EndpointConfigName"]
        ),
        "Endpoint": sagemaker.describe_endpoint(EndpointName=out["EndpointName"]),
        "EndpointScalableTarget": scaling.describe_scalable_targets(
            ServiceNamespace="sagemaker", ResourceIds=[endpoint_resource]
        )["ScalableTargets"],
        "EndpointScalingPolicy": scaling.describe_scaling_policies(
            ServiceNamespace="sagemaker", ResourceId=endpoint_resource
        )["ScalingPolicies"],
        "DeployLogGroup": aws("logs").describe_log_groups(
            logGroupNamePrefix=out["DeployLogGroupRef"]
        )["logGroups"],
        "DeployProject": aws("codebuild").batch_get_projects(names=[out["DeployProjectRef"]])[
            "projects"
        ],
        "RetrainSchedule": {
            **aws("events").describe_rule(Name=out["RetrainScheduleRef"]),
            "Targets": aws("events").list_targets_by_rule(Rule=out["RetrainScheduleRef"])[
                "Targets"
            ],
        },
        "ModelApprovedRule": {
            **aws("events").describe_rule(Name=out["ModelApprovedRuleRef"]),
            "Targets": aws("events").list_targets_by_rule(Rule=out["ModelApprovedRuleRef"])[
                "Targets"
            ],
        },
        "AlertTopic": {
            **aws("sns").get_topic_attributes(TopicArn=out["AlertTopicRef"])["Attributes"],
            "Subscriptions": [
                (item["Protocol"], item["Endpoint"])
                for item in aws("sns").list_subscriptions_by_topic(TopicArn=out["AlertTopicRef"])[
                    "Subscriptions"
                ]
            ],
        },
        "LatencyAlarm": aws("cloudwatch").describe_alarms(AlarmNames=[out["LatencyAlarmRef"]])[
            "MetricAlarms"
        ],
        "Dashboard": json.loads(
            aws("cloudwatch").get_dashboard(DashboardName=out["DashboardRef"])["DashboardBody"]
        ),
        "RestApi": aws("apigateway").get_rest_api(restApiId=api_id),
        "PredictResource": aws("apigateway").get_resource(
            restApiId=api_id, resourceId=out["PredictResourceRef"]
        ),
        "PredictMethod": aws("apigateway").get_method(
            restApiId=api_id, resourceId=out["PredictResourceRef"], httpMethod="POST"
        ),
        "ApiDeployment": aws("apigateway").get_deployment(
            restApiId=api_id, deploymentId=out["ApiDeploymentRef"]
        ),
        "ApiStage": aws("apigateway").get_stage(restApiId=api_id, stageName=out["ApiStageRef"]),
        "ApiAccount": aws("apigateway").get_account(),
        "EndpointNameParameter": {
            **aws("ssm").get_parameter(Name=out["EndpointNameParameterRef"])["Parameter"],
            "Tags": {
                tag["Key"]: tag["Value"]
                for tag in aws("ssm").list_tags_for_resource(
                    ResourceType="Parameter", ResourceId=out["EndpointNameParameterRef"]
                )["TagList"]
            },
        },
    }


def tags_of(sagemaker, arn: str) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in sagemaker.list_tags(ResourceArn=arn)["Tags"]}


@pytest.fixture(scope="module")
def created(aws):
    aws("s3").create_bucket(Bucket=DEFINITION_BUCKET)
    aws("s3").put_object(
        Bucket=DEFINITION_BUCKET, Key=DEFINITION_KEY, Body=json.dumps(S3_PIPELINE_DEFINITION)
    )
    cloudformation = aws("cloudformation")
    cloudformation.create_stack(StackName=STACK, TemplateBody=render(1), Parameters=PARAMETERS)
    cloudformation.get_waiter("stack_create_complete").wait(
        StackName=STACK, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    out = outputs_of(aws, STACK)
    return {
        "outputs": out,
        "physical": physical_ids(aws, STACK),
        "described": describe_all(aws, out),
    }


@pytest.fixture(scope="module")
def updated(aws, created):
    cloudformation = aws("cloudformation")
    cloudformation.update_stack(StackName=STACK, TemplateBody=render(2), Parameters=PARAMETERS)
    cloudformation.get_waiter("stack_update_complete").wait(
        StackName=STACK, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    out = outputs_of(aws, STACK)
    return {
        "outputs": out,
        "physical": physical_ids(aws, STACK),
        "described": describe_all(aws, out),
    }


@pytest.fixture(scope="module")
def deleted(aws, updated):
    cloudformation = aws("cloudformation")
    cloudformation.delete_stack(StackName=STACK)
    cloudformation.get_waiter("stack_delete_complete").wait(
        StackName=STACK, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    return updated["outputs"]


def test_every_resource_of_the_stack_is_created_with_a_physical_id(created):
    physical = created["physical"]
    template_resources = {
        line.split(":")[0].strip()
        for line in render(1).split("\nResources:\n")[1].split("\nOutputs:\n")[0].splitlines()
        if line.startswith("  ") and not line.startswith("   ") and line.strip().endswith(":")
    }
    assert set(physical) == template_resources
    assert all(physical.values()), physical


def test_ref_outputs_equal_the_physical_ids_cloudformation_reports(created):
    out, physical = created["outputs"], created["physical"]
    for logical_id, physical_id in physical.items():
        assert out[f"{logical_id}Ref"] == physical_id, logical_id


def test_ref_and_getatt_follow_the_real_types_return_values(created):
    out = created["outputs"]
    described = created["described"]
    region_account = "us-east-1:123456789012"
    assert out["KeyRef"] == out["KeyKeyId"] == described["Key"]["KeyId"]
    assert out["KeyArn"] == described["Key"]["Arn"]
    assert out["KeyAliasRef"] == f"alias/{STACK}-artifacts"
    bucket = out["ArtifactBucketRef"]
    assert bucket == bucket.lower() and bucket.startswith(f"{STACK}-artifactbucket-")
    assert out["ArtifactBucketArn"] == f"arn:aws:s3:::{bucket}"
    assert out["ArtifactBucketDomainName"] == f"{bucket}.s3.amazonaws.com"
    assert out["ArtifactBucketRegionalDomainName"] == f"{bucket}.s3.us-east-1.amazonaws.com"
    assert out["ArtifactBucketPolicyRef"] == bucket
    assert out["ExecutionRoleArn"] == described["ExecutionRole"]["Arn"]
    assert out["ExecutionRoleRoleId"] == described["ExecutionRole"]["RoleId"]
    assert out["PipelineStartPolicyRef"] == out["PipelineStartPolicyId"]
    assert (
        out["KmsUsePolicyRef"] == out["KmsUsePolicyPolicyArn"] == described["KmsUsePolicy"]["Arn"]
    )
    assert out["KmsUsePolicyDefaultVersionId"] == "v1"
    assert (
        out["ModelPackageGroupRef"]
        == out["ModelPackageGroupArn"]
        == (f"arn:aws:sagemaker:{region_account}:model-package-group/{STACK}-models")
    )
    assert out["ModelPackageGroupStatus"] == "Completed"
    assert out["TrainingPipelineRef"] == f"{STACK}-training"
    assert out["ModelRef"] == described["Model"]["ModelArn"]
    assert out["ModelRef"].endswith(f":model/{out['ModelName']}")
    assert out["EndpointConfigRef"] == described["EndpointConfig"]["EndpointConfigArn"]
    assert out["EndpointRef"] == described["Endpoint"]["EndpointArn"]
    assert out["EndpointName"] == f"{STACK}-endpoint"
    assert (
        out["EndpointScalableTargetRef"]
        == out["EndpointScalableTargetId"]
        == (
            f"endpoint/{STACK}-endpoint/variant/AllTraffic|sagemaker:variant:DesiredInstanceCount|sagemaker"
        )
    )
    assert (
        out["EndpointScalingPolicyRef"]
        == out["EndpointScalingPolicyArn"]
        == (described["EndpointScalingPolicy"][0]["PolicyARN"])
    )
    assert out["DeployLogGroupRef"] == f"/mlops/{STACK}/deploy"
    assert (
        out["DeployLogGroupArn"]
        == f"arn:aws:logs:{region_account}:log-group:/mlops/{STACK}/deploy:*"
    )
    assert out["DeployProjectRef"] == f"{STACK}-deploy"
    assert out["DeployProjectArn"] == described["DeployProject"][0]["arn"]
    assert out["RetrainScheduleRef"] == described["RetrainSchedule"]["Name"]
    assert out["RetrainScheduleArn"] == described["RetrainSchedule"]["Arn"]
    assert out["ModelApprovedRuleRef"] == f"{STACK}-model-approved"
    assert out["AlertTopicRef"] == f"arn:aws:sns:{region_account}:{out['AlertTopicName']}"
    assert out["LatencyAlarmArn"] == described["LatencyAlarm"][0]["AlarmArn"]
    assert out["DashboardRef"] == f"{STACK}-dashboard"
    assert out["RestApiRef"] == described["RestApi"]["id"]
    assert out["RestApiRootResourceId"] == described["PredictResource"]["parentId"]
    assert out["ApiDeploymentRef"] == out["ApiDeploymentId"] == described["ApiDeployment"]["id"]
    assert out["ApiStageRef"] == "v1"
    assert out["ApiAccountRef"] == out["ApiAccountId"]
    assert out["EndpointNameParameterRef"] == f"/mlops/{STACK}/endpoint-name"
    assert out["EndpointNameParameterValue"] == f"{STACK}-endpoint"


def test_created_resources_hold_the_template_properties(created):
    out, d = created["outputs"], created["described"]
    assert d["Key"]["Description"] == "artifact key" and d["Key"]["KeyState"] == "Enabled"
    assert d["Key"]["Rotation"] is True
    assert d["Key"]["Policy"]["Statement"][0]["Sid"] == "AccountAdmin"
    assert d["KeyAlias"] == {f"alias/{STACK}-artifacts": out["KeyRef"]}

    bucket = d["ArtifactBucket"]
    rule = bucket["Encryption"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": out["KeyArn"],
    }
    assert bucket["Versioning"] == "Enabled"
    assert bucket["PublicAccessBlock"] == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["Lifecycle"][0]["ID"] == "expire-scratch"
    assert bucket["Lifecycle"][0]["Expiration"] == {"Days": 14}
    assert bucket["Tags"] == {"project": "mlops", "revision": "1"}
    assert bucket["Ownership"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert bucket["Logging"] == {
        "TargetBucket": DEFINITION_BUCKET,
        "TargetPrefix": "artifact-access/",
    }
    statement = d["ArtifactBucketPolicy"]["Statement"][0]
    assert statement["Sid"] == "DenyInsecureTransport"
    assert statement["Resource"] == [out["ArtifactBucketArn"], f"{out['ArtifactBucketArn']}/*"]

    role = d["ExecutionRole"]
    assert role["Description"] == "runs the training pipeline"
    assert (
        "sagemaker.amazonaws.com"
        in role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"]
    )
    assert role["Attached"] == sorted([SAGEMAKER_FULL_ACCESS, out["KmsUsePolicyRef"]])
    assert role["Inline"] == ["artifact-access", "start-pipeline"]
    assert role["ArtifactAccess"]["Statement"][0]["Resource"] == f"{out['ArtifactBucketArn']}/*"
    assert d["PipelineStartPolicy"]["Statement"][0]["Resource"].endswith(
        f":pipeline/{STACK}-training"
    )
    assert d["KmsUsePolicy"]["Document"]["Statement"][0]["Action"] == ["kms:Decrypt"]
    assert d["KmsUsePolicy"]["Roles"] == [out["ExecutionRoleRef"]]

    group = d["ModelPackageGroup"]
    assert group["ModelPackageGroupDescription"] == "models trained by the pipeline"
    assert d["ModelPackageGroup"]["Tags"] == {"project": "mlops", "revision": "1"}

    pipeline = d["TrainingPipeline"]
    definition = json.loads(pipeline["PipelineDefinition"])
    assert [step["Name"] for step in definition["Steps"]] == ["Train", "Register"]
    training = definition["Steps"][0]["Arguments"]
    assert training["RoleArn"] == out["ExecutionRoleArn"]
    assert training["OutputDataConfig"]["S3OutputPath"] == f"s3://{out['ArtifactBucketRef']}/models"
    assert definition["Steps"][1]["Arguments"]["ModelPackageGroupName"] == f"{STACK}-models"
    assert pipeline["RoleArn"] == out["ExecutionRoleArn"]
    assert pipeline["PipelineDescription"] == "trains and registers the model"
    assert pipeline["ParallelismConfiguration"] == {"MaxParallelExecutionSteps": 2}
    assert json.loads(d["S3DefinedPipeline"]["PipelineDefinition"]) == S3_PIPELINE_DEFINITION

    model = d["Model"]
    assert model["ExecutionRoleArn"] == out["ExecutionRoleArn"]
    assert model["PrimaryContainer"]["Image"].endswith("sagemaker-xgboost:1.7-1")
    assert model["PrimaryContainer"]["Environment"] == {"SAGEMAKER_PROGRAM": "inference.py"}
    variant = d["EndpointConfig"]["ProductionVariants"][0]
    assert variant["ModelName"] == out["ModelName"]
    assert variant["InstanceType"] == "ml.m5.large"
    assert d["EndpointConfig"]["KmsKeyId"] == out["KeyRef"]
    assert d["Endpoint"]["EndpointConfigName"] == out["EndpointConfigName"]
    assert d["Endpoint"]["EndpointStatus"] == "InService"

    target = d["EndpointScalableTarget"][0]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 2)
    policy = d["EndpointScalingPolicy"][0]
    assert policy["PolicyName"] == "invocations-per-instance"
    assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 70.0

    assert d["DeployLogGroup"][0]["retentionInDays"] == 7
    project = d["DeployProject"][0]
    assert project["environment"]["image"] == "aws/codebuild/standard:7.0"
    assert project["environment"]["environmentVariables"] == [
        {"name": "MODEL_PACKAGE_GROUP", "value": f"{STACK}-models"}
    ]
    assert "mlops-infra apply" in project["source"]["buildspec"]
    assert project["serviceRole"] == out["ExecutionRoleArn"]
    assert project["logsConfig"]["cloudWatchLogs"]["groupName"] == out["DeployLogGroupRef"]

    schedule = d["RetrainSchedule"]
    assert schedule["ScheduleExpression"] == "cron(0 3 ? * SUN *)"
    [pipeline_target] = schedule["Targets"]
    assert pipeline_target["Arn"].endswith(f":pipeline/{STACK}-training")
    assert pipeline_target["SageMakerPipelineParameters"] == {
        "PipelineParameterList": [{"Name": "InputDataUrl", "Value": "s3://data/weekly/train.csv"}]
    }
    approved = d["ModelApprovedRule"]
    assert json.loads(approved["EventPattern"])["detail"]["ModelPackageGroupName"] == [
        f"{STACK}-models"
    ]
    assert approved["Targets"][0]["Arn"] == out["DeployProjectArn"]

    topic = d["AlertTopic"]
    assert topic["DisplayName"] == "mlops alerts"
    assert json.loads(topic["Policy"])["Statement"][0]["Sid"] == "CloudWatchPublish"
    assert topic["Subscriptions"] == [("email", "mlops-oncall@example.com")]
    [alarm] = d["LatencyAlarm"]
    assert alarm["Threshold"] == 500000.0
    assert alarm["AlarmActions"] == [out["AlertTopicRef"]]
    assert {"Name": "EndpointName", "Value": out["EndpointName"]} in alarm["Dimensions"]
    assert d["Dashboard"]["widgets"][0]["properties"]["title"] == "Invocations"

    assert d["RestApi"]["name"] == f"{STACK}-inference"
    assert d["RestApi"]["endpointConfiguration"]["types"] == ["REGIONAL"]
    assert d["PredictResource"]["pathPart"] == "predict"
    method = d["PredictMethod"]
    assert method["authorizationType"] == "AWS_IAM"
    assert method["methodIntegration"]["uri"].endswith(
        f"/endpoints/{out['EndpointName']}/invocations"
    )
    assert method["methodIntegration"]["credentials"] == out["ExecutionRoleArn"]
    stage = d["ApiStage"]
    assert stage["deploymentId"] == out["ApiDeploymentRef"]
    assert stage["variables"] == {"endpointName": out["EndpointName"]}
    assert stage["methodSettings"]["*/*"]["loggingLevel"] == "INFO"
    assert d["ApiAccount"]["cloudwatchRoleArn"] == out["ExecutionRoleArn"]

    parameter = d["EndpointNameParameter"]
    assert (parameter["Type"], parameter["Value"]) == ("String", f"{STACK}-endpoint")
    assert parameter["Tags"] == {"project": "mlops"}


def test_update_reaches_every_changed_resource_in_place(created, updated):
    before, after = created["described"], updated["described"]
    out = updated["outputs"]
    assert after["Key"]["Description"] == "artifact key (rotated)"
    assert after["ArtifactBucket"]["Versioning"] == "Suspended"
    assert after["ArtifactBucket"]["Tags"]["revision"] == "2"
    assert after["ExecutionRole"]["Description"] == "runs the training pipeline and deploys"
    assert after["ExecutionRole"]["Attached"] == sorted(
        [SAGEMAKER_FULL_ACCESS, CLOUDWATCH_LOGS_FOR_API_GATEWAY, out["KmsUsePolicyRef"]]
    )
    assert after["KmsUsePolicy"]["DefaultVersionId"] == "v2"
    assert after["KmsUsePolicy"]["Document"]["Statement"][0]["Action"] == [
        "kms:Decrypt",
        "kms:GenerateDataKey",
    ]
    assert after["ModelPackageGroup"]["Tags"]["revision"] == "2"
    pipeline = after["TrainingPipeline"]
    assert [step["Name"] for step in json.loads(pipeline["PipelineDefinition"])["Steps"]] == [
        "TrainXGBoost",
        "Register",
    ]
    assert pipeline["PipelineDescription"] == "trains, evaluates and registers the model"
    assert pipeline["PipelineArn"] == before["TrainingPipeline"]["PipelineArn"]
    assert after["EndpointScalableTarget"][0]["MaxCapacity"] == 4
    policy = after["EndpointScalingPolicy"][0]
    assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 50.0
    assert policy["PolicyARN"] == before["EndpointScalingPolicy"][0]["PolicyARN"]
    assert after["DeployLogGroup"][0]["retentionInDays"] == 30
    project = after["DeployProject"][0]
    assert project["description"] == "deploys approved models to production"
    assert project["environment"]["image"] == "aws/codebuild/standard:7.0-24.10.29"
    assert project["created"] == before["DeployProject"][0]["created"]
    schedule = after["RetrainSchedule"]
    assert schedule["ScheduleExpression"] == "cron(0 4 ? * SUN *)"
    assert schedule["Targets"][0]["SageMakerPipelineParameters"]["PipelineParameterList"] == [
        {"Name": "InputDataUrl", "Value": "s3://data/daily/train.csv"}
    ]
    assert schedule["Name"] == before["RetrainSchedule"]["Name"]
    topic = after["AlertTopic"]
    assert topic["DisplayName"] == "mlops alerts (prod)"
    assert topic["TopicArn"] == before["AlertTopic"]["TopicArn"]
    assert topic["Subscriptions"] == [("email", "mlops-oncall@example.com")]
    assert json.loads(topic["Policy"])["Statement"][0]["Sid"] == "CloudWatchPublish"
    assert after["LatencyAlarm"][0]["Threshold"] == 250000.0
    assert after["Dashboard"]["widgets"][0]["properties"]["title"] == "Invocations per variant"
    assert after["RestApi"]["description"] == "inference API v2"
    assert after["RestApi"]["id"] == before["RestApi"]["id"]
    assert after["ApiStage"]["description"] == "first stage, updated"
    parameter = after["EndpointNameParameter"]
    assert parameter["Value"] == f"endpoint:{STACK}-endpoint"
    assert parameter["Version"] == before["EndpointNameParameter"]["Version"] + 1


def test_a_create_only_change_replaces_the_resource_and_its_dependents_follow(
    aws, created, updated
):
    before, after = created["outputs"], updated["outputs"]
    # The model's image is create-only: a new model (with a new generated name) replaces the old.
    assert after["ModelName"] != before["ModelName"]
    assert updated["described"]["Model"]["PrimaryContainer"]["Image"].endswith(
        "sagemaker-xgboost:1.7-2"
    )
    with pytest.raises(ClientError):
        aws("sagemaker").describe_model(ModelName=before["ModelName"])
    # The endpoint config names the model in ProductionVariants (create-only): replaced in turn.
    assert after["EndpointConfigName"] != before["EndpointConfigName"]
    variant = updated["described"]["EndpointConfig"]["ProductionVariants"][0]
    assert variant["ModelName"] == after["ModelName"]
    with pytest.raises(ClientError):
        aws("sagemaker").describe_endpoint_config(EndpointConfigName=before["EndpointConfigName"])
    # The endpoint (named) is updated in place to the new config, as UpdateEndpoint does.
    assert after["EndpointRef"] == before["EndpointRef"]
    assert updated["described"]["Endpoint"]["EndpointConfigName"] == after["EndpointConfigName"]
    assert updated["physical"]["Model"] == after["ModelRef"]


def present(check: Callable[[], Any]) -> bool:
    try:
        result = check()
    except ClientError:
        return False
    return bool(result)


def test_delete_removes_every_resource_except_the_retained_ones(aws, deleted):
    out = deleted
    api_id = out["RestApiRef"]
    sagemaker, iam = aws("sagemaker"), aws("iam")
    endpoint_resource = f"endpoint/{out['EndpointName']}/variant/AllTraffic"
    gone = {
        "KeyAlias": lambda: aws("kms").list_aliases(KeyId=out["KeyRef"])["Aliases"],
        "ArtifactBucketPolicy": lambda: aws("s3").get_bucket_policy(
            Bucket=out["ArtifactBucketRef"]
        ),
        "ExecutionRole": lambda: iam.get_role(RoleName=out["ExecutionRoleRef"]),
        "KmsUsePolicy": lambda: iam.get_policy(PolicyArn=out["KmsUsePolicyRef"]),
        "ModelPackageGroup": lambda: sagemaker.describe_model_package_group(
            ModelPackageGroupName=f"{STACK}-models"
        ),
        "TrainingPipeline": lambda: sagemaker.describe_pipeline(
            PipelineName=out["TrainingPipelineRef"]
        ),
        "S3DefinedPipeline": lambda: sagemaker.describe_pipeline(
            PipelineName=out["S3DefinedPipelineRef"]
        ),
        "Model": lambda: sagemaker.describe_model(ModelName=out["ModelName"]),
        "EndpointConfig": lambda: sagemaker.describe_endpoint_config(
            EndpointConfigName=out["EndpointConfigName"]
        ),
        "Endpoint": lambda: sagemaker.describe_endpoint(EndpointName=out["EndpointName"]),
        "EndpointScalableTarget": lambda: aws("application-autoscaling").describe_scalable_targets(
            ServiceNamespace="sagemaker", ResourceIds=[endpoint_resource]
        )["ScalableTargets"],
        "EndpointScalingPolicy": lambda: aws("application-autoscaling").describe_scaling_policies(
            ServiceNamespace="sagemaker", ResourceId=endpoint_resource
        )["ScalingPolicies"],
        "DeployProject": lambda: aws("codebuild").batch_get_projects(
            names=[out["DeployProjectRef"]]
        )["projects"],
        "RetrainSchedule": lambda: aws("events").describe_rule(Name=out["RetrainScheduleRef"]),
        "ModelApprovedRule": lambda: aws("events").describe_rule(Name=out["ModelApprovedRuleRef"]),
        "AlertTopic": lambda: aws("sns").get_topic_attributes(TopicArn=out["AlertTopicRef"]),
        "LatencyAlarm": lambda: aws("cloudwatch").describe_alarms(
            AlarmNames=[out["LatencyAlarmRef"]]
        )["MetricAlarms"],
        "Dashboard": lambda: aws("cloudwatch").get_dashboard(DashboardName=out["DashboardRef"]),
        "RestApi": lambda: aws("apigateway").get_rest_api(restApiId=api_id),
        "EndpointNameParameter": lambda: aws("ssm").get_parameter(
            Name=out["EndpointNameParameterRef"]
        ),
    }
    still_there = sorted(logical_id for logical_id, check in gone.items() if present(check))
    assert still_there == []
    # DeletionPolicy: Retain keeps the bucket (with its configuration) and the log group.
    assert aws("s3").get_bucket_versioning(Bucket=out["ArtifactBucketRef"])["Status"] == "Suspended"
    groups = aws("logs").describe_log_groups(logGroupNamePrefix=out["DeployLogGroupRef"])[
        "logGroups"
    ]
    assert [group["logGroupName"] for group in groups] == [out["DeployLogGroupRef"]]
    # A KMS key is never deleted at once: the stack schedules its deletion (PendingWindowInDays: 7).
    key = aws("kms").describe_key(KeyId=out["KeyRef"])["KeyMetadata"]
    assert key["KeyState"] == "PendingDeletion"
    stacks = aws("cloudformation").list_stacks(StackStatusFilter=["DELETE_COMPLETE"])[
        "StackSummaries"
    ]
    assert STACK in [stack["StackName"] for stack in stacks]
