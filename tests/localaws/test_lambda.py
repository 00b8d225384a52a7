"""Lambda functions written in Python run on the emulator, without Docker, as Lambda runs them.

A function's code comes from a .zip in the emulator's S3 (or inline), it runs with a session of its
execution role and its calls reach the same emulator; errors, timeouts and invocation types answer
as Lambda's Invoke does; CloudFormation creates, updates and deletes functions and permissions.
"""

from __future__ import annotations

import base64
import io
import json
import time
import uuid
import zipfile

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import client_as, run_script, start_server

REGION = "us-east-1"
ACCOUNT = "123456789012"
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}

APP = '''
import json
import os
import time

import boto3

print("init", os.environ["AWS_LAMBDA_FUNCTION_NAME"])


def handler(event, context):
    print("event", json.dumps(event, sort_keys=True))
    action = event.get("action")
    if action == "fail":
        raise ValueError("the photo is not a plant")
    if action == "sleep":
        time.sleep(event["seconds"])
        boto3.client("s3").put_object(Bucket=event["bucket"], Key=event["key"], Body=b"late")
        return "woke up"
    if action == "mark":
        boto3.client("s3").put_object(Bucket=event["bucket"], Key=event["key"], Body=b"ran")
        return None
    if action == "exit":
        raise SystemExit(3)
    return {
        "caller": boto3.client("sts").get_caller_identity()["Arn"],
        "buckets": sorted(b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]),
        "greeting": os.environ.get("GREETING"),
        "event": event,
        "environment": {
            key: os.environ.get(key)
            for key in (
                "AWS_REGION",
                "AWS_DEFAULT_REGION",
                "AWS_LAMBDA_FUNCTION_NAME",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                "AWS_LAMBDA_FUNCTION_VERSION",
                "AWS_LAMBDA_LOG_GROUP_NAME",
                "AWS_EXECUTION_ENV",
                "_HANDLER",
            )
        },
        "task_root_is_cwd": os.environ["LAMBDA_TASK_ROOT"] == os.getcwd(),
        "context": {
            "function_name": context.function_name,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "invoked_function_arn": context.invoked_function_arn,
            "aws_request_id": context.aws_request_id,
            "remaining_ms": context.get_remaining_time_in_millis(),
        },
    }
'''


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def package(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def make_role(aws, name: str, statements: list[dict] | None = None, trust: dict = LAMBDA_TRUST) -> str:
    arn = aws("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    if statements:
        aws("iam").put_role_policy(
            RoleName=name,
            PolicyName="function",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
        )
    return arn


def upload(aws, files: dict[str, str]) -> tuple[str, str]:
    bucket = unique("code")
    aws("s3").create_bucket(Bucket=bucket)
    aws("s3").put_object(Bucket=bucket, Key="function.zip", Body=package(files))
    return bucket, "function.zip"


def create_function(aws, files: dict[str, str] | None = None, **options) -> str:
    name = options.pop("FunctionName", None) or unique("fn")
    bucket, key = upload(aws, files or {"app.py": APP})
    aws("lambda").create_function(
        FunctionName=name,
        Runtime=options.pop("Runtime", "python3.12"),
        Role=options.pop("Role", None) or make_role(aws, unique("role")),
        Handler=options.pop("Handler", "app.handler"),
        Code={"S3Bucket": bucket, "S3Key": key},
        **options,
    )
    return name


def invoke(aws, name: str, event: dict | bytes, **options) -> tuple[dict, object]:
    payload = event if isinstance(event, bytes) else json.dumps(event).encode()
    answer = aws("lambda").invoke(FunctionName=name, Payload=payload, **options)
    body = answer["Payload"].read()
    return answer, (json.loads(body) if body else None)


def objects(aws, bucket: str) -> list[str]:
    return [item["Key"] for item in aws("s3").list_objects_v2(Bucket=bucket).get("Contents", [])]


# --- Invoke -----------------------------------------------------------------------------------------


def test_invoke_runs_the_handler_with_the_role_session_and_its_calls_reach_the_emulator(aws):
    role_name = unique("role")
    role = make_role(aws, role_name)
    name = create_function(
        aws, Role=role, MemorySize=256, Environment={"Variables": {"GREETING": "bonjour"}}
    )
    answer, result = invoke(aws, name, {"photo": "rose.jpg"}, LogType="Tail")
    assert answer["StatusCode"] == 200
    assert "FunctionError" not in answer
    assert answer["ExecutedVersion"] == "$LATEST"
    # The SDK in the function called this emulator with a session of the role named after the function.
    assert result["caller"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{name}"
    assert set(result["buckets"]) >= {bucket["Name"] for bucket in aws("s3").list_buckets()["Buckets"]}
    assert result["greeting"] == "bonjour"
    assert result["event"] == {"photo": "rose.jpg"}
    assert result["environment"] == {
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "_HANDLER": "app.handler",
    }
    assert result["task_root_is_cwd"] is True
    context = result["context"]
    assert context["function_name"] == name and context["memory_limit_in_mb"] == "256"
    assert context["invoked_function_arn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    assert 0 < context["remaining_ms"] <= 3000
    request_id = context["aws_request_id"]
    assert answer["ResponseMetadata"]["RequestId"] == request_id
    # LogType=Tail: the end of the invocation's log, as Lambda writes it.
    log = base64.b64decode(answer["LogResult"]).decode()
    assert f"START RequestId: {request_id} Version: $LATEST" in log
    assert 'event {"photo": "rose.jpg"}' in log
    assert f"END RequestId: {request_id}" in log and f"REPORT RequestId: {request_id}\tDuration: " in log
    # The output reached the function's log group (created on first use, as Lambda does).
    logs = aws("logs")
    [stream] = logs.describe_log_streams(logGroupName=f"/aws/lambda/{name}")["logStreams"]
    assert stream["logStreamName"].endswith(f"[$LATEST]{stream['logStreamName'][-32:]}")
    messages = [
        event["message"]
        for event in logs.get_log_events(
            logGroupName=f"/aws/lambda/{name}", logStreamName=stream["logStreamName"]
        )["events"]
    ]
    assert messages[0] == f"init {name}"
    assert messages[1] == f"START RequestId: {request_id} Version: $LATEST"
    assert 'event {"photo": "rose.jpg"}' in messages


def test_an_exception_is_an_unhandled_function_error_in_lambdas_shape(aws):
    name = create_function(aws)
    answer, error = invoke(aws, name, {"action": "fail"})
    assert answer["StatusCode"] == 200
    assert answer["FunctionError"] == "Unhandled"
    assert list(error) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    assert error["errorMessage"] == "the photo is not a plant"
    assert error["errorType"] == "ValueError"
    assert error["requestId"] == answer["ResponseMetadata"]["RequestId"]
    # Only the function's frames, as the runtime reports them.
    assert len(error["stackTrace"]) == 1
    assert '/app.py", line ' in error["stackTrace"][0] and ", in handler\n" in error["stackTrace"][0]
    assert "raise ValueError" in error["stackTrace"][0]


def test_a_handler_past_its_timeout_is_stopped_and_answers_sandbox_timedout(aws):
    name = create_function(aws, Timeout=1)
    bucket = unique("late")
    aws("s3").create_bucket(Bucket=bucket)
    started = time.monotonic()
    answer, error = invoke(aws, name, {"action": "sleep", "seconds": 3, "bucket": bucket, "key": "k"})
    elapsed = time.monotonic() - started
    assert answer["StatusCode"] == 200 and answer["FunctionError"] == "Unhandled"
    request_id = answer["ResponseMetadata"]["RequestId"]
    assert error == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {request_id} Error: Task timed out after 1.00 seconds",
    }
    assert elapsed < 3
    # The process was killed: the handler never got past its sleep.
    time.sleep(3)
    assert objects(aws, bucket) == []


def test_a_process_that_exits_answers_runtime_exit_error(aws):
    name = create_function(aws)
    answer, error = invoke(aws, name, {"action": "exit"})
    assert answer["FunctionError"] == "Unhandled"
    request_id = answer["ResponseMetadata"]["RequestId"]
    assert error == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: exit status 3",
    }


def test_init_errors_are_the_runtimes(aws):
    missing_module = create_function(aws, Handler="nope.handler")
    answer, error = invoke(aws, missing_module, {})
    assert answer["FunctionError"] == "Unhandled"
    assert error == {
        "errorMessage": "Unable to import module 'nope': No module named 'nope'",
        "errorType": "Runtime.ImportModuleError",
        "requestId": "",
        "stackTrace": [],
    }
    missing_function = create_function(aws, Handler="app.missing")
    _, error = invoke(aws, missing_function, {})
    assert error["errorType"] == "Runtime.HandlerNotFound"
    assert error["errorMessage"] == "Handler 'missing' missing on module 'app'"
    # Only what Lambda's Python runtime provides is importable: boto3 is, the emulator's own
    # packages (moto, flask …) are not.
    imports_flask = create_function(aws, {"app.py": "import boto3\nimport flask\n\ndef handler(e, c):\n    return 1\n"})
    _, error = invoke(aws, imports_flask, {})
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert error["errorMessage"] == "Unable to import module 'app': No module named 'flask'"


def test_event_runs_later_and_dry_run_not_at_all(aws):
    name = create_function(aws)
    bucket = unique("marks")
    aws("s3").create_bucket(Bucket=bucket)
    answer, body = invoke(aws, name, {"action": "mark", "bucket": bucket, "key": "dry"}, InvocationType="DryRun")
    assert answer["StatusCode"] == 204 and body is None
    answer, body = invoke(aws, name, {"action": "mark", "bucket": bucket, "key": "event"}, InvocationType="Event")
    assert answer["StatusCode"] == 202 and body is None
    deadline = time.monotonic() + 20
    while "event" not in objects(aws, bucket) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert objects(aws, bucket) == ["event"]
    # A handler returning None answers null.
    answer, body = invoke(aws, name, {"action": "mark", "bucket": bucket, "key": "sync"})
    assert answer["StatusCode"] == 200 and body is None


def test_a_payload_that_is_not_json_is_refused(aws):
    name = create_function(aws)
    with pytest.raises(ClientError) as error:
        aws("lambda").invoke(FunctionName=name, Payload=b"{not json")
    assert error.value.response["Error"]["Code"] == "InvalidRequestContentException"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as error:
        aws("lambda").invoke(FunctionName=unique("absent"), Payload=b"{}")
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_layers_are_importable_and_the_functions_own_code_comes_first(aws):
    layer = aws("lambda").publish_layer_version(
        LayerName=unique("shared"),
        Content={"ZipFile": package({"python/shared.py": "WHERE = 'layer'\n", "python/app_helper.py": "WHERE = 'layer'\n"})},
        CompatibleRuntimes=["python3.12"],
    )["LayerVersionArn"]
    code = {
        "app.py": "import shared, app_helper\n\ndef handler(e, c):\n    return [shared.WHERE, app_helper.WHERE]\n",
        "app_helper.py": "WHERE = 'function'\n",
    }
    name = create_function(aws, code, Layers=[layer])
    _, result = invoke(aws, name, {})
    assert result == ["layer", "function"]


def test_a_reserved_concurrency_of_zero_throttles_every_invocation(aws):
    name = create_function(aws)
    aws("lambda").put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    throttled = boto3.client(
        "lambda",
        endpoint_url=aws.url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )
    error = refused(lambda: throttled.invoke(FunctionName=name, Payload=b"{}"))
    assert error["Code"] == "TooManyRequestsException"
    aws("lambda").delete_function_concurrency(FunctionName=name)
    answer, _ = invoke(aws, name, {})
    assert answer["StatusCode"] == 200


# --- CreateFunction's checks ------------------------------------------------------------------------


def refused(call) -> dict:
    with pytest.raises(ClientError) as error:
        call()
    return error.value.response["Error"]


def test_create_function_refuses_what_lambda_refuses(aws):
    bucket, key = upload(aws, {"app.py": APP})
    role = make_role(aws, unique("role"))
    ecs_trust = json.loads(json.dumps(LAMBDA_TRUST).replace("lambda.amazonaws.com", "ecs-tasks.amazonaws.com"))
    not_for_lambda = make_role(aws, unique("ecs"), trust=ecs_trust)

    def create(**changes):
        arguments = {
            "FunctionName": unique("fn"),
            "Runtime": "python3.12",
            "Role": role,
            "Handler": "app.handler",
            "Code": {"S3Bucket": bucket, "S3Key": key},
        }
        arguments.update(changes)
        return lambda: aws("lambda").create_function(**arguments)

    error = refused(create(Role=not_for_lambda))
    assert (error["Code"], error["Message"]) == (
        "InvalidParameterValueException",
        "The role defined for the function cannot be assumed by Lambda.",
    )
    error = refused(create(Code={"ZipFile": b"not a zip"}))
    assert error["Code"] == "InvalidParameterValueException"
    assert error["Message"] == "Could not unzip uploaded file. Please check your file, then try to upload again."
    error = refused(create(Code={"S3Bucket": bucket, "S3Key": "absent.zip"}))
    assert error["Code"] == "InvalidParameterValueException"
    assert "S3 Error Code: NoSuchKey" in error["Message"]
    error = refused(create(Environment={"Variables": {"AWS_REGION": "eu-west-1", "OK": "1"}}))
    assert error["Code"] == "InvalidParameterValueException"
    assert error["Message"].endswith("Reserved keys used in this request: AWS_REGION")
    error = refused(create(Timeout=901))
    assert error["Code"] == "ValidationException" and "less than or equal to 900" in error["Message"]
    # The configuration returns LoggingConfig, and the runtime writes to its log group.
    name = unique("fn")
    create(FunctionName=name, LoggingConfig={"LogGroup": "/platform/functions"})()
    config = aws("lambda").get_function_configuration(FunctionName=name)
    assert config["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": "/platform/functions"}
    invoke(aws, name, {})
    streams = aws("logs").describe_log_streams(logGroupName="/platform/functions")["logStreams"]
    assert len(streams) == 1


# --- CloudFormation ---------------------------------------------------------------------------------

STACK_TEMPLATE = """
Parameters:
  CodeBucket: {Type: String}
  CodeKey: {Type: String}
  Greeting: {Type: String}
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - {Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: sts:AssumeRole}
  LogGroup:
    Type: AWS::Logs::LogGroup
    Properties:
      LogGroupName: !Sub "/aws/lambda/${AWS::StackName}-fn"
      RetentionInDays: 90
  Function:
    Type: AWS::Lambda::Function
    DependsOn: LogGroup
    Properties:
      FunctionName: !Sub "${AWS::StackName}-fn"
      Runtime: python3.12
      Handler: app.handler
      Role: !GetAtt Role.Arn
      Code: {S3Bucket: !Ref CodeBucket, S3Key: !Ref CodeKey}
      Timeout: 5
      MemorySize: 512
      Architectures: [arm64]
      TracingConfig: {Mode: Active}
      Environment:
        Variables:
          GREETING: !Ref Greeting
      Tags:
        - {Key: project, Value: mlops}
  Inline:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Handler: index.handler
      Role: !GetAtt Role.Arn
      Code:
        ZipFile: |
          import cfnresponse
          def handler(event, context):
              return {"inline": True, "cfnresponse": hasattr(cfnresponse, "send")}
  Permission:
    Type: AWS::Lambda::Permission
    Properties:
      FunctionName: !Ref Function
      Action: lambda:InvokeFunction
      Principal: apigateway.amazonaws.com
      SourceAccount: !Ref AWS::AccountId
      SourceArn: !Sub "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:abc123/*/POST/identify"
Outputs:
  FunctionRef: {Value: !Ref Function}
  FunctionArn: {Value: !GetAtt Function.Arn}
  InlineRef: {Value: !Ref Inline}
  PermissionRef: {Value: !Ref Permission}
  PermissionId: {Value: !GetAtt Permission.Id}
"""


def stack_outputs(aws, stack: str) -> dict[str, str]:
    described = aws("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    assert described["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE"), described["StackStatus"]
    return {item["OutputKey"]: item["OutputValue"] for item in described.get("Outputs") or []}


def test_cloudformation_creates_updates_and_deletes_functions_and_permissions(aws):
    stack = unique("lambda-stack")
    bucket, key = upload(aws, {"app.py": APP})
    aws("s3").put_object(
        Bucket=bucket,
        Key="v2.zip",
        Body=package({"app.py": "def handler(event, context):\n    return {'version': 2}\n"}),
    )
    cloudformation = aws("cloudformation")

    def parameters(code_key: str, greeting: str) -> list[dict[str, str]]:
        values = {"CodeBucket": bucket, "CodeKey": code_key, "Greeting": greeting}
        return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]

    cloudformation.create_stack(StackName=stack, TemplateBody=STACK_TEMPLATE, Parameters=parameters(key, "hello"))
    out = stack_outputs(aws, stack)
    name = f"{stack}-fn"
    assert out["FunctionRef"] == name
    assert out["FunctionArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    config = aws("lambda").get_function(FunctionName=name)
    assert config["Configuration"]["Architectures"] == ["arm64"]
    assert config["Configuration"]["MemorySize"] == 512 and config["Configuration"]["Timeout"] == 5
    assert config["Configuration"]["TracingConfig"] == {"Mode": "Active"}
    assert config["Tags"] == {"project": "mlops"}
    # The generated name fits Lambda's 64 characters.
    assert out["InlineRef"].startswith(f"{stack}-Inline-") and len(out["InlineRef"]) <= 64
    # The permission is a statement of the function's policy, its Sid the resource's id.
    assert out["PermissionRef"] == out["PermissionId"] and out["PermissionRef"].startswith(f"{stack}-Permission-")
    [statement] = json.loads(aws("lambda").get_policy(FunctionName=name)["Policy"])["Statement"]
    assert statement["Sid"] == out["PermissionRef"]
    assert statement["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert statement["Condition"]["ArnLike"] == {
        "AWS:SourceArn": f"arn:aws:execute-api:{REGION}:{ACCOUNT}:abc123/*/POST/identify"
    }
    events = cloudformation.describe_stack_events(StackName=stack)["StackEvents"]
    assert {(e["LogicalResourceId"], e["ResourceStatus"]) for e in events} >= {
        ("Function", "CREATE_COMPLETE"),
        ("Permission", "CREATE_COMPLETE"),
        ("Inline", "CREATE_COMPLETE"),
    }

    _, result = invoke(aws, name, {"photo": 1})
    assert result["greeting"] == "hello"
    assert result["caller"].startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/{stack}-Role-")
    assert result["caller"].endswith(f"/{name}")
    _, inline = invoke(aws, out["InlineRef"], {})
    assert inline == {"inline": True, "cfnresponse": True}
    # The stack's log group is the one the function writes to.
    assert aws("logs").describe_log_streams(logGroupName=f"/aws/lambda/{name}")["logStreams"]

    # An update changes the configuration in place.
    cloudformation.update_stack(StackName=stack, TemplateBody=STACK_TEMPLATE, Parameters=parameters(key, "salut"))
    assert stack_outputs(aws, stack)["FunctionRef"] == name
    _, result = invoke(aws, name, {})
    assert result["greeting"] == "salut"
    # ... and the code, from the new package.
    cloudformation.update_stack(StackName=stack, TemplateBody=STACK_TEMPLATE, Parameters=parameters("v2.zip", "salut"))
    stack_outputs(aws, stack)
    _, result = invoke(aws, name, {})
    assert result == {"version": 2}

    cloudformation.delete_stack(StackName=stack)
    assert refused(lambda: aws("lambda").get_function(FunctionName=name))["Code"] == "ResourceNotFoundException"
    assert refused(lambda: aws("lambda").get_function(FunctionName=out["InlineRef"]))["Code"] == "ResourceNotFoundException"
    groups = aws("logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{name}")["logGroups"]
    assert groups == []


def test_a_function_whose_package_is_missing_fails_the_stack(aws):
    stack = unique("no-code")
    bucket, _ = upload(aws, {"app.py": APP})
    template = STACK_TEMPLATE.replace("S3Key: !Ref CodeKey", "S3Key: absent.zip").split("Outputs:")[0]
    aws("cloudformation").create_stack(
        StackName=stack,
        TemplateBody=template,
        Parameters=[
            {"ParameterKey": "CodeBucket", "ParameterValue": bucket},
            {"ParameterKey": "CodeKey", "ParameterValue": "x"},
            {"ParameterKey": "Greeting", "ParameterValue": "x"},
        ],
    )
    described = aws("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    assert described["StackStatus"] == "ROLLBACK_COMPLETE"
    events = aws("cloudformation").describe_stack_events(StackName=stack)["StackEvents"]
    [failed] = [e for e in events if e["ResourceStatus"] == "CREATE_FAILED"]
    assert failed["LogicalResourceId"] == "Function"
    assert "S3 Error Code: NoSuchKey" in failed["ResourceStatusReason"]


# --- With IAM enforced ------------------------------------------------------------------------------

# The router's calls: read the photo, describe the approved package, ask the endpoint.
ROUTER = '''
import json
import os

import boto3
from botocore.exceptions import ClientError


def handler(event, context):
    photo = boto3.client("s3").get_object(Bucket=os.environ["PHOTOS"], Key=event["key"])["Body"].read()
    package = boto3.client("sagemaker").describe_model_package(ModelPackageName=os.environ["PACKAGE"])
    answer = boto3.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=os.environ["ENDPOINT"], ContentType="image/jpeg", Body=photo
    )
    denied = {}
    for name, call in (
        ("s3", lambda: boto3.client("s3").get_object(Bucket=os.environ["ELSEWHERE"], Key="secret")),
        ("sagemaker", lambda: boto3.client("sagemaker-runtime").invoke_endpoint(
            EndpointName="another-endpoint", ContentType="image/jpeg", Body=photo)),
    ):
        try:
            call()
            denied[name] = None
        except ClientError as error:
            denied[name] = [error.response["Error"]["Code"], error.response["Error"]["Message"]]
    return {
        "package": package["ModelPackageArn"],
        "scores": json.loads(answer["Body"].read()),
        "denied": denied,
    }
'''
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + bytes(range(256))


@pytest.fixture(scope="module")
def enforcing(tmp_path_factory: pytest.TempPathFactory):
    state_dir = tmp_path_factory.mktemp("local-aws-lambda-enforcing")
    url = start_server(state_dir, "--enforce-iam")
    try:
        yield url
    finally:
        assert run_script(state_dir, "stop").returncode == 0


def client(url: str, service: str, credentials: dict[str, str] | None = None):
    return client_as(url, service, REGION, credentials, retries={"max_attempts": 1})


def queue_endpoint_answer(url: str, body: str) -> None:
    import urllib.request

    request = urllib.request.Request(
        url + "/moto-api/static/sagemaker/endpoint-results",
        data=json.dumps({"region": REGION, "results": [{"Body": body, "ContentType": "application/json"}]}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request).read()


def test_with_iam_enforced_the_function_may_do_what_its_role_allows_and_nothing_else(enforcing):
    root = lambda service: client(enforcing, service)  # noqa: E731
    photos, elsewhere, code = unique("photos"), unique("elsewhere"), unique("code")
    for bucket in (photos, elsewhere, code):
        root("s3").create_bucket(Bucket=bucket)
    root("s3").put_object(Bucket=photos, Key="rose.jpg", Body=JPEG)
    root("s3").put_object(Bucket=elsewhere, Key="secret", Body=b"no")
    root("s3").put_object(Bucket=code, Key="router.zip", Body=package({"router.py": ROUTER}))
    sagemaker = root("sagemaker")
    group = unique("flowers")
    sagemaker.create_model_package_group(ModelPackageGroupName=group)
    package_arn = sagemaker.create_model_package(
        ModelPackageGroupName=group,
        InferenceSpecification={
            "Containers": [{"Image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/flowers:1"}],
            "SupportedContentTypes": ["image/jpeg"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
    )["ModelPackageArn"]
    endpoint = unique("flowers-endpoint")
    queue_endpoint_answer(enforcing, "[0.1, 0.9]")

    role_name = unique("router")
    statements = [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{photos}/*"},
        {"Effect": "Allow", "Action": "sagemaker:DescribeModelPackage", "Resource": package_arn},
        {
            "Effect": "Allow",
            "Action": "sagemaker:InvokeEndpoint",
            "Resource": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{endpoint}",
        },
    ]
    role = make_role(lambda service: root(service), role_name, statements)
    name = unique("router")
    root("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="router.handler",
        Code={"S3Bucket": code, "S3Key": "router.zip"},
        Timeout=30,
        Environment={
            "Variables": {"PHOTOS": photos, "PACKAGE": package_arn, "ENDPOINT": endpoint, "ELSEWHERE": elsewhere}
        },
    )
    answer = root("lambda").invoke(FunctionName=name, Payload=json.dumps({"key": "rose.jpg"}).encode())
    result = json.loads(answer["Payload"].read())
    assert "FunctionError" not in answer, result
    assert result["package"] == package_arn
    assert result["scores"] == [0.1, 0.9]
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{name}"
    assert result["denied"]["s3"][0] == "AccessDenied"
    assert result["denied"]["sagemaker"] == [
        "AccessDeniedException",
        f"User: {session} is not authorized to perform: sagemaker:InvokeEndpoint on resource: "
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/another-endpoint because no "
        "identity-based policy allows the sagemaker:InvokeEndpoint action",
    ]
    # The role may not write logs: Lambda writes none (its group is not even created).
    groups = root("logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{name}")["logGroups"]
    assert groups == []

    # Granted the logs permissions of AWSLambdaBasicExecutionRole, it logs.
    root("iam").put_role_policy(
        RoleName=role_name,
        PolicyName="logs",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                        "Resource": "*",
                    }
                ],
            }
        ),
    )
    root("lambda").invoke(FunctionName=name, Payload=json.dumps({"key": "rose.jpg"}).encode())
    assert root("logs").describe_log_streams(logGroupName=f"/aws/lambda/{name}")["logStreams"]


def test_with_iam_enforced_invoking_needs_lambda_invoke_function(enforcing):
    root = lambda service: client(enforcing, service)  # noqa: E731
    code = unique("code")
    root("s3").create_bucket(Bucket=code)
    root("s3").put_object(Bucket=code, Key="f.zip", Body=package({"app.py": "def handler(e, c):\n    return 'ok'\n"}))
    name = unique("fn")
    role = make_role(lambda service: root(service), unique("role"))
    root("lambda").create_function(
        FunctionName=name, Runtime="python3.11", Role=role, Handler="app.handler", Code={"S3Bucket": code, "S3Key": "f.zip"}
    )
    caller_trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}],
    }
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    allowed = make_role(
        lambda service: root(service),
        unique("caller"),
        [{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": arn}],
        trust=caller_trust,
    )
    other = make_role(
        lambda service: root(service),
        unique("other"),
        [{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": arn + "-other"}],
        trust=caller_trust,
    )

    def as_role(role_arn: str):
        credentials = root("sts").assume_role(RoleArn=role_arn, RoleSessionName="caller")["Credentials"]
        return client(enforcing, "lambda", credentials)

    assert json.loads(as_role(allowed).invoke(FunctionName=name, Payload=b"{}")["Payload"].read()) == "ok"
    error = refused(lambda: as_role(other).invoke(FunctionName=name, Payload=b"{}"))
    assert error["Code"] == "AccessDeniedException"
    assert f"lambda:InvokeFunction on resource: {arn} because" in error["Message"]
