"""Renders every_type.yaml, the stack holding one resource of each type, at revision 1 or 2.

Revision 2 is the update: it changes properties of most resources, and the model's image (a
create-only property), which replaces the model and, through it, the endpoint configuration.
"""

from pathlib import Path

TEMPLATE = Path(__file__).with_name("every_type.yaml")

SAGEMAKER_FULL_ACCESS = "arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"
CLOUDWATCH_LOGS_FOR_API_GATEWAY = (
    "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
)

REVISIONS = {
    1: {
        "REVISION": "1",
        "KEY_DESCRIPTION": "artifact key",
        "VERSIONING": "Enabled",
        "ROLE_DESCRIPTION": "runs the training pipeline",
        "ROLE_MANAGED_POLICIES": f"[{SAGEMAKER_FULL_ACCESS}]",
        "KMS_ACTIONS": '["kms:Decrypt"]',
        "PIPELINE_DESCRIPTION": "trains and registers the model",
        "TRAIN_STEP": "Train",
        "MODEL_IMAGE_TAG": "1.7-1",
        "MAX_CAPACITY": "2",
        "TARGET_VALUE": "70.0",
        "RETENTION_DAYS": "7",
        "PROJECT_DESCRIPTION": "deploys approved models",
        "BUILD_IMAGE": "aws/codebuild/standard:7.0",
        "SCHEDULE": "cron(0 3 ? * SUN *)",
        "INPUT_DATA_URL": "s3://data/weekly/train.csv",
        "TOPIC_DISPLAY_NAME": "mlops alerts",
        "ALARM_THRESHOLD": "500000",
        "DASHBOARD_TITLE": "Invocations",
        "API_DESCRIPTION": "inference API",
        "STAGE_DESCRIPTION": "first stage",
        "PARAMETER_PREFIX": "",
    },
    2: {
        "REVISION": "2",
        "KEY_DESCRIPTION": "artifact key (rotated)",
        "VERSIONING": "Suspended",
        "ROLE_DESCRIPTION": "runs the training pipeline and deploys",
        "ROLE_MANAGED_POLICIES": f"[{SAGEMAKER_FULL_ACCESS}, {CLOUDWATCH_LOGS_FOR_API_GATEWAY}]",
        "KMS_ACTIONS": '["kms:Decrypt", "kms:GenerateDataKey"]',
        "PIPELINE_DESCRIPTION": "trains, evaluates and registers the model",
        "TRAIN_STEP": "TrainXGBoost",
        "MODEL_IMAGE_TAG": "1.7-2",
        "MAX_CAPACITY": "4",
        "TARGET_VALUE": "50.0",
        "RETENTION_DAYS": "30",
        "PROJECT_DESCRIPTION": "deploys approved models to production",
        "BUILD_IMAGE": "aws/codebuild/standard:7.0-24.10.29",
        "SCHEDULE": "cron(0 4 ? * SUN *)",
        "INPUT_DATA_URL": "s3://data/daily/train.csv",
        "TOPIC_DISPLAY_NAME": "mlops alerts (prod)",
        "ALARM_THRESHOLD": "250000",
        "DASHBOARD_TITLE": "Invocations per variant",
        "API_DESCRIPTION": "inference API v2",
        "STAGE_DESCRIPTION": "first stage, updated",
        "PARAMETER_PREFIX": "endpoint:",
    },
}


def render(revision: int) -> str:
    text = TEMPLATE.read_text()
    for marker, value in REVISIONS[revision].items():
        text = text.replace("{{" + marker + "}}", value)
    if "{{" in text:
        raise ValueError(f"unfilled marker in {TEMPLATE}: {text[text.index('{{') :][:40]}")
    return text
