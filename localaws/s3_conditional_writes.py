"""S3 conditional writes that are atomic, as on AWS.

PutObject and CompleteMultipartUpload with `If-None-Match: *` or `If-Match: <etag>` are
compare-and-set operations on AWS: "If multiple conditional writes or copies occur for the same
object name, the first write operation to finish succeeds. Amazon S3 then fails subsequent writes
with a 412 Precondition Failed response" (S3 User Guide, "How to prevent object overwrites with
conditional writes", section "Conditional write behavior",
https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html). The API reference
adds 409 ConditionalRequestConflict for a conflicting operation during the write
(https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObject.html, `If-Match`/`If-None-Match`;
the same text is in botocore's S3 model).

moto (5.2.5, moto/s3/responses.py `put_object`, `_key_response_post`) looks the key up, checks the
condition, and stores the object as separate steps, and its server is threaded: two requests
creating one key with `If-None-Match: *` could both pass the check and both succeed, so two
reviewers could claim one photo. Here each write of a key (PutObject, CopyObject's destination,
DeleteObject, CompleteMultipartUpload) holds a lock for that (account, bucket, key) from the check
to the store, so of concurrent conditional writes exactly one succeeds and the others get moto's
own 412 PreconditionFailed. Unconditional writes of the key take the lock too (else one could land
between another request's check and store); writes of other keys are not held up (one lock per
key, dropped when no request holds or awaits it). The request body is read before the lock is
taken, so it is held for an in-memory store (and any S3 notification moto sends from it, e.g. a
Lambda function it invokes, which may write other keys). The emulator never answers 409: with the
check and the store under one lock there is no conflicting operation in flight.

If-Match on a key that does not exist: the User Guide says "If there's no current object version
with the same name, or if the current object version is a delete marker, the operation fails with
a 404 Not Found error". moto's PutObject already answers 404 NoSuchKey (its AWS-verified test
`test_put_object_if_match` expects NoSuchKey). moto's CompleteMultipartUpload ignored `If-Match`
altogether (only `If-None-Match` was checked); here it is checked like PutObject's: a different
ETag fails with 412 PreconditionFailed (condition If-Match), a missing key (or a delete marker)
with 404 NoSuchKey. As in moto, completing an upload that already completed answers again without
checking (moto's idempotent retry).

Not changed: moto ignores `If-Match`/`If-None-Match` on CopyObject's destination (AWS honours
them); the platform does not copy conditionally.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_REGISTRY = threading.Lock()
# (account, bucket, key) -> [its lock, how many requests hold or await it]
_LOCKS: dict[tuple[str, str, str], list[Any]] = {}


@contextmanager
def key_lock(account: str, bucket: str, key: str) -> Iterator[None]:
    """Holds the lock of (account, bucket, key) for the block."""
    name = (account, bucket, key)
    with _REGISTRY:
        entry = _LOCKS.get(name)
        if entry is None:
            entry = _LOCKS[name] = [threading.RLock(), 0]
        entry[1] += 1
    try:
        with entry[0]:
            yield
    finally:
        with _REGISTRY:
            entry[1] -= 1
            if entry[1] == 0:
                del _LOCKS[name]


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    """`method` (a moto S3Response method writing the request's key) under that key's lock."""

    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with key_lock(self.current_account, self.bucket_name, self.parse_key_name()):
            return method(self, *args, **kwargs)

    locked.__name__ = method.__name__
    locked.__doc__ = method.__doc__
    return locked


def install() -> None:
    from moto.s3.exceptions import MissingKey, PreconditionFailed
    from moto.s3.responses import S3Response

    # Each checks the request's condition (If-Match / If-None-Match) and writes the key.
    for name in ("put_object", "copy_object", "delete_object"):
        setattr(S3Response, name, _locked(getattr(S3Response, name)))

    key_response_post = S3Response._key_response_post

    def _key_response_post(
        self: Any, request: Any, body: bytes, bucket_name: str, query: dict[str, Any], key_name: str
    ) -> Any:
        if not query.get("uploadId"):  # CreateMultipartUpload, RestoreObject, SelectObjectContent
            return key_response_post(self, request, body, bucket_name, query, key_name)
        # CompleteMultipartUpload: moto checks If-None-Match, then stores.
        with key_lock(self.current_account, bucket_name, key_name):
            return key_response_post(self, request, body, bucket_name, query, key_name)

    S3Response._key_response_post = _key_response_post

    complete_multipart_body = S3Response._complete_multipart_body

    def _complete_multipart_body(self: Any, body: bytes) -> Any:
        # moto calls this only to complete an upload (not for a repeated completion), after
        # authorizing the request and checking If-None-Match, under the key's lock taken above:
        # the place for the If-Match check moto leaves out.
        if_match = self.headers.get("If-Match")
        if if_match:
            existing = self.backend.get_object(self.bucket_name, self.parse_key_name())
            if existing is None:
                raise MissingKey
            if if_match.replace('"', "") != existing.etag.replace('"', ""):
                raise PreconditionFailed("If-Match")
        return complete_multipart_body(self, body)

    S3Response._complete_multipart_body = _complete_multipart_body
