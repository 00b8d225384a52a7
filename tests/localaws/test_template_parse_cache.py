"""localaws/engine.py: templates parsed once, each caller given its own copy."""

from __future__ import annotations

from localaws import engine

TEMPLATE = """\
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: !Sub "${AWS::StackName}-alerts"
Outputs:
  Arn:
    Value: !GetAtt [Topic, TopicArn]
"""


def test_a_template_parses_as_before_and_each_caller_gets_its_own_copy(monkeypatch):
    engine.install()
    monkeypatch.setattr(engine, "_PARSED", type(engine._PARSED)())
    first = engine.parse_template(TEMPLATE)
    assert first["Resources"]["Topic"]["Properties"]["TopicName"] == {"Fn::Sub": "${AWS::StackName}-alerts"}
    assert first["Outputs"]["Arn"]["Value"] == {"Fn::GetAtt": ["Topic", "TopicArn"]}
    # What moto does to its copy does not reach the next caller.
    first["Resources"]["Topic"]["Properties"]["TopicName"] = "changed"
    second = engine.parse_template(TEMPLATE)
    assert second["Resources"]["Topic"]["Properties"]["TopicName"] == {"Fn::Sub": "${AWS::StackName}-alerts"}
    second["Outputs"].clear()
    assert engine.parse_template(TEMPLATE)["Outputs"]["Arn"]
    # JSON too.
    assert engine.parse_template('{"Resources": {}}') == {"Resources": {}}


def test_only_the_latest_templates_are_kept(monkeypatch):
    monkeypatch.setattr(engine, "_PARSED", type(engine._PARSED)())
    monkeypatch.setattr(engine, "PARSED_KEPT", 3)
    for number in range(5):
        engine.parse_template(f"Description: t{number}\nResources: {{}}\n")
    engine.parse_template("Description: t2\nResources: {}\n")  # used again: kept longest
    engine.parse_template("Description: t5\nResources: {}\n")
    assert list(engine._PARSED) == [f"Description: t{n}\nResources: {{}}\n" for n in (4, 2, 5)]
