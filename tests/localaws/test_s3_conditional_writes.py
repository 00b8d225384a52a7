"""S3 conditional writes are atomic in the emulator, as on AWS (localaws/s3_conditional_writes.py).

Of concurrent writes of one key with `If-None-Match: *` (or `If-Match` with the current ETag)
exactly one succeeds; the others are refused with 412 PreconditionFailed (AWS may also answer
409 ConditionalRequestConflict). The review queue relies on it so that two reviewers never claim
the same photo.

Without the fix the multipart race, the If-Match check of CompleteMultipartUpload and the 500s of
concurrent plain writes show up on nearly every run; the PutObject races are real but narrow under
CPython's GIL (about one round in a hundred lets two writers through), so those tests catch a
regression only on some runs.
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from conftest import REGION, client_as

THREADS = 8
ROUNDS = 30
# Large enough that storing it takes a while (hashing it releases the GIL), as a photo's does.
BODY_BYTES = 256 * 1024
REFUSED = {"PreconditionFailed", "ConditionalRequestConflict"}


def body(writer: int) -> bytes:
    return f"writer {writer}\n".encode().ljust(BODY_BYTES, b".")


@pytest.fixture(scope="module")
def bucket(aws) -> str:
    name = f"conditional-writes-{uuid.uuid4().hex[:12]}"
    aws("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def clients(local_aws) -> list:
    """One client per writer thread (made here: creating clients is not thread-safe), none retrying
    so that each answer is the server's first."""
    return [
        client_as(local_aws.url, "s3", REGION, retries={"total_max_attempts": 1})
        for _ in range(THREADS)
    ]


def race(clients: list, write) -> list[tuple[str, object]]:
    """Runs `write(client, writer)` in THREADS threads started together; per writer, ("ok", answer)
    or ("error", (HTTP status, error code))."""
    barrier = threading.Barrier(THREADS)

    def attempt(writer: int) -> tuple[str, object]:
        barrier.wait()
        try:
            return "ok", write(clients[writer], writer)
        except ClientError as error:
            return "error", (error.response["ResponseMetadata"]["HTTPStatusCode"], error.response["Error"]["Code"])

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(attempt, range(THREADS)))


def assert_one_winner(outcomes: list[tuple[str, object]], round_: int) -> int:
    winners = [writer for writer, (kind, _) in enumerate(outcomes) if kind == "ok"]
    refusals = [answer for kind, answer in outcomes if kind == "error"]
    assert len(winners) == 1, f"round {round_}: {len(winners)} writes succeeded: {outcomes}"
    assert all(code in REFUSED for _, code in refusals), f"round {round_}: {refusals}"
    assert all(status in (409, 412) for status, _ in refusals), f"round {round_}: {refusals}"
    return winners[0]


def stored(aws, bucket: str, key: str) -> bytes:
    return aws("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def test_concurrent_creates_with_if_none_match_let_exactly_one_win(aws, bucket, clients):
    for round_ in range(ROUNDS):
        key = f"review/claims/photo-{round_}.json"

        def create(client, writer: int):
            return client.put_object(Bucket=bucket, Key=key, Body=body(writer), IfNoneMatch="*")

        winner = assert_one_winner(race(clients, create), round_)
        assert stored(aws, bucket, key) == body(winner)


def test_concurrent_replacements_with_if_match_let_exactly_one_win(aws, bucket, clients):
    for round_ in range(ROUNDS):
        key = f"review/queue/state-{round_}.json"
        etag = aws("s3").put_object(Bucket=bucket, Key=key, Body=b"initial")["ETag"]

        def replace(client, writer: int):
            return client.put_object(Bucket=bucket, Key=key, Body=body(writer), IfMatch=etag)

        winner = assert_one_winner(race(clients, replace), round_)
        assert stored(aws, bucket, key) == body(winner)


def test_concurrent_multipart_completions_with_if_none_match_let_exactly_one_win(aws, bucket, clients):
    s3 = aws("s3")
    for round_ in range(10):
        key = f"uploads/big-{round_}.bin"
        uploads = []
        for writer in range(THREADS):
            upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
            part = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=body(writer))
            uploads.append((upload, [{"PartNumber": 1, "ETag": part["ETag"]}]))

        def complete(client, writer: int):
            upload, parts = uploads[writer]
            return client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}, IfNoneMatch="*"
            )

        winner = assert_one_winner(race(clients, complete), round_)
        assert stored(aws, bucket, key) == body(winner)


def test_unconditional_concurrent_writes_all_succeed(aws, bucket, clients):
    key = "unconditional.bin"
    outcomes = race(clients, lambda client, writer: client.put_object(Bucket=bucket, Key=key, Body=body(writer)))
    # Without the lock moto answered some of them 500 (the replaced object's buffer was closed
    # while its response was being written).
    assert [kind for kind, _ in outcomes] == ["ok"] * THREADS, [o for o in outcomes if o[0] == "error"]
    assert stored(aws, bucket, key) in {body(writer) for writer in range(THREADS)}


def test_if_match_on_a_missing_key_is_no_such_key(aws, bucket):
    # S3 User Guide, conditional writes: "If there's no current object version with the same name
    # ... the operation fails with a 404 Not Found error" (NoSuchKey).
    with pytest.raises(ClientError) as refused:
        aws("s3").put_object(Bucket=bucket, Key="never-written", Body=b"x", IfMatch='"0123456789abcdef"')
    assert refused.value.response["Error"]["Code"] == "NoSuchKey"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_complete_multipart_upload_checks_if_match(aws, bucket):
    s3 = aws("s3")

    def upload(key: str, content: bytes) -> dict:
        upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        part = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=content)
        return {"Bucket": bucket, "Key": key, "UploadId": upload_id,
                "MultipartUpload": {"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]}}

    def refusal(**request) -> tuple[int, str, str | None]:
        with pytest.raises(ClientError) as refused:
            s3.complete_multipart_upload(**request)
        response = refused.value.response
        return (response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"],
                response["Error"].get("Condition"))

    # No object: 404 NoSuchKey, and nothing is written.
    assert refusal(**upload("multipart-missing", b"a"), IfMatch='"0123456789abcdef"')[:2] == (404, "NoSuchKey")
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="multipart-missing")

    etag = s3.put_object(Bucket=bucket, Key="multipart-existing", Body=b"first")["ETag"]
    # Another ETag: 412 PreconditionFailed, and the object is unchanged.
    assert refusal(**upload("multipart-existing", b"b"), IfMatch='"0123456789abcdef"') == (
        412, "PreconditionFailed", "If-Match"
    )
    assert stored(aws, bucket, "multipart-existing") == b"first"
    # The current ETag: the upload replaces the object.
    s3.complete_multipart_upload(**upload("multipart-existing", b"second"), IfMatch=etag)
    assert stored(aws, bucket, "multipart-existing") == b"second"
