"""`mlops-infra review` end to end in a real browser: headless Chromium (Debian's chromium and
chromium-driver, driven by Selenium) against the local AWS with staging applied.

The photos waiting for review are written by the router's own code (`keep_for_review` in
router/handler.py) into the deployed data bucket; two reviewers, each with their own
`mlops-infra review` and browser, label them with the keyboard and the search box. The test
checks what lands in the bucket (raw copies, audit records, nothing left pending), that the two
never hold the same photo, that broken items and bad labels change nothing, and that an
unreachable bucket is said so on the page. Screenshots go to target/review-screenshots/.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "target" / "debug" / "mlops-infra"
SCREENSHOTS = REPO / "target" / "review-screenshots"
ACCOUNT = "222222222222"
REGION = "eu-west-1"
PREFIX = "mlops-images-staging"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
TREES = ["oak", "beech", "birch", "white willow", "maple", "ash"]
PLANTS = ["trees", "flowers", "grasses"]
WIDTHS = (1280, 390)

sys.path.insert(0, str(REPO / "tests" / "localaws"))
from conftest import client_as, run_script  # noqa: E402


def router_module():
    spec = importlib.util.spec_from_file_location("router_handler", REPO / "router" / "handler.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def tool_environment(url: str, credentials: dict[str, str] | None = None) -> dict[str, str]:
    """The tool's environment: the account root's keys, or a role session's `credentials`."""
    environment = dict(
        os.environ,
        AWS_ENDPOINT_URL=url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION=REGION,
        NO_COLOR="1",
    )
    environment.pop("AWS_SESSION_TOKEN", None)
    if credentials:
        environment.update(
            AWS_ACCESS_KEY_ID=credentials["AccessKeyId"],
            AWS_SECRET_ACCESS_KEY=credentials["SecretAccessKey"],
            AWS_SESSION_TOKEN=credentials["SessionToken"],
        )
    return environment


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    """The local AWS as staging's account, with IAM enforced, and staging applied by mlops-infra."""
    assert TOOL.exists(), f"{TOOL} is not built: run `cargo build` first"
    state_dir = tmp_path_factory.mktemp("local-aws-review")
    started = subprocess.run(
        [str(REPO / "scripts" / "local-aws"), "start", "--enforce-iam"],
        env=dict(os.environ, LOCAL_AWS_STATE_DIR=str(state_dir), MOTO_ACCOUNT_ID=ACCOUNT),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip().splitlines()[-1]
    try:
        applied = subprocess.run(
            [str(TOOL), "apply", "staging", "--yes"],
            cwd=REPO,
            env=tool_environment(url),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert applied.returncode == 0, applied.stderr
        yield {"url": url, "state_dir": state_dir}
    finally:
        run_script(state_dir, "stop")


def client(url: str, service: str):
    return client_as(url, service, REGION)


def outputs(url: str, stack: str) -> dict[str, str]:
    described = client(url, "cloudformation").describe_stacks(StackName=f"{PREFIX}-{stack}")
    return {item["OutputKey"]: item["OutputValue"] for item in described["Stacks"][0].get("Outputs", [])}


def photo(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def platform(emulator):
    """Registered packages with class names, and eight photos the router kept for review."""
    url = emulator["url"]
    storage = outputs(url, "storage")
    data, artifacts = storage["DataBucketName"], storage["ArtifactsBucketName"]
    s3, sagemaker = client(url, "s3"), client(url, "sagemaker")
    packages = {}
    for model, classes in (("plants", PLANTS), ("trees", TREES)):
        key = f"{PREFIX}-{model}/run-1/datasets/index/classes.json"
        s3.put_object(Bucket=artifacts, Key=key, Body=json.dumps(classes).encode())
        created = sagemaker.create_model_package(
            ModelPackageGroupName=f"{PREFIX}-{model}",
            ModelApprovalStatus="Approved",
            CustomerMetadataProperties={"classes": f"s3://{artifacts}/{key}"},
            InferenceSpecification={
                "Containers": [{"Image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ic:1",
                                "ModelDataUrl": f"s3://{artifacts}/{PREFIX}-{model}/run-1/model/model.tar.gz"}],
                "SupportedContentTypes": ["application/x-image"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
        )
        packages[model] = created["ModelPackageArn"]
    router = router_module()
    config = router.parse_config(json.dumps({
        "parent": {"model": "plants", "endpoint": f"{PREFIX}-plants", "package": packages["plants"]},
        "routes": {"trees": {"model": "trees", "endpoint": f"{PREFIX}-trees", "package": packages["trees"]}},
        "low_confidence_threshold": 0.6, "max_image_bytes": 4_000_000, "timeout_seconds": 5,
        "namespace": f"mlops-images/staging/router", "environment": "staging",
        "review": {"bucket": data, "prefix": "review/pending/plants/"},
    }))
    clients = router.Clients(5, s3=s3)
    start = datetime(2026, 12, 1, 7, 0, 0, tzinfo=timezone.utc)
    stems = []
    for index in range(8):
        parent = router.Classification(config.parent, [("trees", 0.55), ("flowers", 0.30), ("grasses", 0.15)])
        ranked = [(name, round(0.4 - 0.05 * position, 2)) for position, name in enumerate(TREES)]
        child = router.Classification(config.routes["trees"], ranked)
        received = start + timedelta(seconds=index)
        kept = router.keep_for_review(
            config, config.review, clients, f"req-{index}", received,
            photo((30 * index, 120, 200 - 20 * index)), parent, child,
        )
        assert kept, "the router's review copy was written"
        stems.append(router.review_stem(received, f"req-{index}"))
    return {"url": url, "data": data, "stems": stems, "s3": s3, "reviewer": reviewer_session(url, "reviewers")}


def reviewer_session(url: str, name: str) -> dict[str, str]:
    """A session of a role holding only the deployed reviewers' policy (IAM is enforced)."""
    iam = client(url, "iam")
    role = iam.create_role(
        RoleName=name,
        AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                           "Action": "sts:AssumeRole"}],
        }),
    )["Role"]
    iam.attach_role_policy(RoleName=name, PolicyArn=outputs(url, "iam")["ReviewerPolicyArn"])
    return client(url, "sts").assume_role(RoleArn=role["Arn"], RoleSessionName="review")["Credentials"]


class Reviewer:
    """One `mlops-infra review` process and the headless Chromium that uses it."""

    def __init__(self, url: str, name: str, profile: Path, credentials: dict[str, str]):
        self.name = name
        self.process = subprocess.Popen(
            [str(TOOL), "review", "staging", "--no-browser"],
            cwd=REPO,
            env=tool_environment(url, credentials),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.address = None
        for _ in range(5):
            line = self.process.stdout.readline()
            if line.startswith("http://127.0.0.1:"):
                self.address = line.strip()
                break
        assert self.address, f"review printed no address: {self.process.stderr.read() if self.process.poll() is not None else ''}"
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-quic", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
                     "--window-size=1280,900"):
            options.add_argument(flag)
        self.browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.browser.get(self.address)

    @property
    def base(self) -> str:
        return self.address.split("/?", 1)[0]

    def item(self) -> str | None:
        found = self.browser.find_elements(By.CSS_SELECTOR, "main[data-item]")
        return found[0].get_attribute("data-item") if found else None

    def flash(self) -> str:
        return self.browser.find_element(By.ID, "flash").text

    def progress(self) -> str:
        return self.browser.find_element(By.ID, "progress").text

    def press(self, key: str) -> None:
        """A key on the page (not in a field), then waits for the next page."""
        old = self.browser.find_element(By.TAG_NAME, "html")
        self.browser.find_element(By.TAG_NAME, "body").send_keys(key)
        WebDriverWait(self.browser, 15).until(lambda _: _stale(old))

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for width in WIDTHS:
            self.browser.set_window_size(width, 900)
            self.browser.save_screenshot(str(SCREENSHOTS / f"{name}-{width}.png"))
        self.browser.set_window_size(1280, 900)

    def close(self) -> None:
        self.browser.quit()
        self.process.terminate()
        self.process.wait(timeout=10)


def _stale(element) -> bool:
    try:
        element.is_enabled()
        return False
    except Exception:
        return True


def keys(s3, bucket: str, prefix: str) -> list[str]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for item in listed.get("Contents", [])]


def audit(s3, bucket: str, stem: str) -> dict:
    return json.loads(s3.get_object(Bucket=bucket, Key=f"review/done/plants/{stem}.json")["Body"].read())


@pytest.fixture(scope="module")
def reviewers(platform, tmp_path_factory):
    ana = Reviewer(platform["url"], "ana", tmp_path_factory.mktemp("chromium-ana"), platform["reviewer"])
    ben = Reviewer(platform["url"], "ben", tmp_path_factory.mktemp("chromium-ben"), platform["reviewer"])
    yield ana, ben
    ana.close()
    ben.close()


def test_two_reviewers_label_photos_into_the_raw_data(platform, reviewers):
    ana, ben = reviewers
    s3, data, stems = platform["s3"], platform["data"], platform["stems"]
    first, second = ana.item(), ben.item()
    assert first == stems[0], "the oldest photo comes first"
    assert second == stems[1], "the second reviewer gets the next one, not the same"
    assert "8 waiting · 0 reviewed by you" in ana.progress()
    assert ana.browser.execute_script(
        "var i = document.getElementById('photo'); return i.complete && i.naturalWidth;"
    ) == 320, "the photo is served through the tool"
    ana.screenshot("item")
    claims = keys(s3, data, "review/claims/plants/")
    assert sorted(claims) == sorted(f"review/claims/plants/{stem}.json" for stem in (first, second))

    # Ana confirms the model's answer with Enter.
    ana.press(Keys.ENTER)
    assert ana.flash() == (
        f"Confirmed oak: copied to raw/trees/oak/{first}.jpg and raw/plants/trees/{first}.jpg."
    )
    record = audit(s3, data, first)
    assert record["decision"]["verdict"] == "agreed"
    assert record["reviewer"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/reviewers/review"
    assert record["record"]["image"]["key"] == f"review/pending/plants/{first}.jpg"
    assert f"raw/trees/oak/{first}.jpg" in keys(s3, data, "raw/trees/oak/")
    assert f"raw/plants/trees/{first}.jpg" in keys(s3, data, "raw/plants/trees/")
    assert not [key for key in keys(s3, data, "review/pending/plants/") if first in key]

    # Ben searches the classes and corrects his photo to "white willow".
    search = ben.browser.find_element(By.ID, "search")
    search.send_keys("white")
    options = [o.get_attribute("value") for o in ben.browser.find_elements(By.CSS_SELECTOR, "#species option")]
    assert "white willow" in options
    old = ben.browser.find_element(By.TAG_NAME, "html")
    search.send_keys(" willow", Keys.ENTER)
    WebDriverWait(ben.browser, 15).until(lambda _: _stale(old))
    assert ben.flash().startswith(f"Corrected to white willow: copied to raw/trees/white willow/{second}.jpg")
    assert audit(s3, data, second)["decision"] == {
        "verdict": "corrected", "label": "white willow", "level": "species",
        "copied_to": [f"raw/trees/white willow/{second}.jpg", f"raw/plants/trees/{second}.jpg"],
    }
    ben.screenshot("corrected")

    # Ana rejects her next photo with "r": an audit record, no raw copy.
    third = ana.item()
    assert third not in (first, second, ben.item())
    ana.press("r")
    assert ana.flash() == f"Rejected {third}: kept out of the training data."
    assert audit(s3, data, third)["decision"]["verdict"] == "rejected"
    assert not [key for key in keys(s3, data, "raw/") if third in key]
    assert "5 waiting · 2 reviewed by you" in ana.progress()

    # The review log holds one metric line per decision for the dashboard.
    logs = client(platform["url"], "logs")
    streams = logs.describe_log_streams(logGroupName="/mlops-images/staging/review")["logStreams"]
    lines = [
        json.loads(event["message"])
        for stream in streams
        for event in logs.get_log_events(
            logGroupName="/mlops-images/staging/review", logStreamName=stream["logStreamName"]
        )["events"]
    ]
    assert sorted((line["Agreed"], line["Corrected"], line["Rejected"]) for line in lines) == [
        (0, 0, 1), (0, 1, 0), (1, 0, 0)
    ]


def test_the_reviewers_policy_grants_review_and_nothing_more(platform, reviewers):
    """The sessions above hold only the reviewers' policy, and IAM is enforced: what review
    needs worked, and what it does not need is refused."""
    from botocore.exceptions import ClientError

    credentials = platform["reviewer"]
    s3 = client_as(platform["url"], "s3", REGION, credentials)
    data = platform["data"]
    for call in (
        lambda: s3.delete_object(Bucket=data, Key=f"raw/trees/oak/{platform['stems'][0]}.jpg"),
        lambda: s3.put_object(Bucket=data, Key="review/pending/plants/forged.json", Body=b"{}"),
        lambda: s3.list_objects_v2(Bucket=data, Prefix="raw/"),
    ):
        with pytest.raises(ClientError) as refused:
            call()
        assert refused.value.response["Error"]["Code"] == "AccessDenied"


def test_bad_input_is_said_on_the_page_and_changes_nothing(platform, reviewers):
    ana, _ = reviewers
    s3, data = platform["s3"], platform["data"]
    stem = ana.item()
    before = sorted(keys(s3, data, "review/pending/") + keys(s3, data, "raw/") + keys(s3, data, "review/done/"))

    # A label that is not among the model's classes (typed past the list).
    search = ana.browser.find_element(By.ID, "search")
    old = ana.browser.find_element(By.TAG_NAME, "html")
    search.send_keys("baobab", Keys.ENTER)
    WebDriverWait(ana.browser, 15).until(lambda _: _stale(old))
    assert ana.flash() == "`baobab` is not a class of model `trees`; nothing was changed; pick a class from the list"
    assert ana.item() == stem
    after = sorted(keys(s3, data, "review/pending/") + keys(s3, data, "raw/") + keys(s3, data, "review/done/"))
    assert after == before

    # A pending photo whose image is gone, and one whose record does not parse.
    pending = sorted(key for key in keys(s3, data, "review/pending/plants/") if key.endswith(".json"))
    gone = pending[-1].rsplit("/", 1)[1].removesuffix(".json")
    s3.delete_object(Bucket=data, Key=f"review/pending/plants/{gone}.jpg")
    s3.put_object(Bucket=data, Key="review/pending/plants/20261201T065959Z-garbled.json", Body=b"{not json")
    ana.browser.get(ana.base + "/")
    assert "This photo cannot be reviewed" in ana.browser.page_source
    problem = ana.browser.find_element(By.ID, "broken").text
    assert "does not parse" in problem
    ana.screenshot("broken")
    ana.press("s")
    assert ana.flash().startswith("Skipped 20261201T065959Z-garbled")
    assert ana.item() == stem, "back to the photo it holds"
    # Skip ana's own photo too, and reach the one whose image is gone.
    while ana.item() is not None and ana.item() != gone:
        ana.press("s")
    broken = ana.browser.find_element(By.ID, "broken").text
    assert f"its image review/pending/plants/{gone}.jpg is gone" in broken
    assert f"review/pending/plants/{gone}.json" in keys(s3, data, "review/pending/plants/")
    assert "review/pending/plants/20261201T065959Z-garbled.json" in keys(s3, data, "review/pending/plants/")


def test_an_unreachable_bucket_is_said_on_the_page(platform, reviewers, emulator):
    _, ben = reviewers
    stopped = run_script(emulator["state_dir"], "stop")
    assert stopped.returncode == 0, stopped.stderr
    ben.browser.get(ben.base + "/")
    text = ben.browser.find_element(By.TAG_NAME, "body").text
    assert "The review queue cannot be read" in text
    assert "cannot reach the AWS endpoint" in ben.flash()
    assert "check the network and try again" in ben.flash()
    ben.screenshot("unreachable")
