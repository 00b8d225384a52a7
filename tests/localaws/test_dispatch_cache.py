"""localaws/dispatch_cache.py: moto's package list, read once, with the same answers."""

from __future__ import annotations

from moto import backends

from localaws import dispatch_cache


def test_the_package_list_is_read_once_and_answers_as_before(monkeypatch):
    listed = list(backends.list_of_moto_modules())
    assert {"cloudformation", "s3", "iam", "sagemaker"} <= set(listed)
    assert not any(name.startswith("__") for name in listed)
    monkeypatch.setattr(dispatch_cache, "_installed", False)
    monkeypatch.setattr(backends, "list_of_moto_modules", backends.list_of_moto_modules)
    dispatch_cache.install()
    cached = backends.list_of_moto_modules
    assert list(cached()) == listed
    dispatch_cache.install()  # once only
    assert backends.list_of_moto_modules is cached
    # Read once: the folder is not listed again.
    monkeypatch.setattr("os.listdir", lambda path: [])
    assert list(cached()) == listed
    assert "cloudformation" in cached(), "the dispatcher's question: is the host a package?"


def test_method_names_are_kept_per_class_and_follow_a_class_that_changes():
    from moto.cloudformation.responses import CloudFormationResponse
    from moto.core.utils import method_names_from_class

    calls = []

    def counted(clazz):
        calls.append(clazz)
        return method_names_from_class(clazz)

    cached = dispatch_cache.cached_method_names(counted)
    names = cached(CloudFormationResponse)
    assert "describe_stacks" in names
    assert names == method_names_from_class(CloudFormationResponse)
    assert cached(CloudFormationResponse) is names
    assert len(calls) == 1

    class Response(CloudFormationResponse):
        pass

    assert "late_action" not in cached(Response)
    # A handler installed after the first request is found.
    Response.late_action = lambda self: None
    assert "late_action" in cached(Response)
    del Response.late_action
    assert "late_action" not in cached(Response)
    assert len(calls) == 4
