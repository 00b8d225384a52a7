"""Binary InvokeEndpoint bodies, and answers kept apart per endpoint.

moto's server decodes every request body as UTF-8 before routing it, so InvokeEndpoint with an
image (what the platform's endpoints take) fails with HTTP 500. Here the SageMaker Runtime
responses read the raw body, and keep a body that is not text as base64: moto's InvokeEndpoint
only uses the body to tell requests apart (its answers are queued through its
`/moto-api/static/sagemaker/endpoint-results` API; it runs no model).

moto also reads the endpoint's name from the request's parameters, where a REST request does
not carry it (it is in the path, `/endpoints/<name>/invocations`): every endpoint shared one
table of answers, so a second endpoint sent the same image answered as the first. The name is
taken from the path here, so each endpoint takes its own answer from the queue, as the router
(which sends one photo to a parent's endpoint, then a child's) needs.
"""

import base64
from typing import Any
from urllib.parse import unquote


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

    original_params = SageMakerRuntimeResponse._get_params

    def _get_params(self: Any) -> Any:
        params = original_params(self)
        parts = self.path.split("?")[0].split("/")
        if len(parts) >= 4 and parts[1] == "endpoints" and "EndpointName" not in params:
            params = dict(params)
            params["EndpointName"] = unquote(parts[2])
        return params

    SageMakerRuntimeResponse._get_params = _get_params
