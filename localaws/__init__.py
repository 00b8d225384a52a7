"""A local AWS for mlops-infra: moto's server plus the CloudFormation handlers our templates need.

Layout:
- ``launcher``: start/stop/status/env of the server (stdlib only; runs before the venv exists).
- ``server``: the process entry; imports ``handlers`` and then runs ``moto.server.main``.
- ``handlers``: one module per AWS service, each holding CloudFormation resource handlers backed by
  moto's own service backends.

Nothing here is imported by the mlops-infra tool; it talks to the server through AWS_ENDPOINT_URL.
"""
