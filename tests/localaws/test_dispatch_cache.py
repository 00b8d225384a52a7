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
