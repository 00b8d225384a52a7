"""Binary InvokeEndpoint bodies.

moto's server decodes every request body as UTF-8 before routing it, so InvokeEndpoint with an
image (what the platform's endpoints take) fails with HTTP 500. Here the SageMaker Runtime
responses read the raw body, and keep a body that is not text as base64: moto's InvokeEndpoint
only uses the body to tell requests apart (its answers are queued through its
`/moto-api/static/sagemaker/endpoint-results` API; it runs no model).
"""

import base64
from typing import Any


def install() -> None:
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

    original = SageMakerRuntimeResponse.setup_class

    def setup_class(self: Any, request: Any, full_url: str, headers: Any, use_raw_body: bool = False) -> None:
        original(self, request, full_url, headers, use_raw_body=True)
        if isinstance(self.body, bytes):
            try:
                self.body = self.body.decode("utf-8")
            except UnicodeDecodeError:
                self.body = base64.b64encode(self.body).decode("ascii")

    SageMakerRuntimeResponse.setup_class = setup_class
