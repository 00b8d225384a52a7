"""CloudFormation handlers for CloudWatch alarms and dashboards, backed by moto's CloudWatch backend."""

from __future__ import annotations

from typing import Any

from moto.cloudwatch.models import (
    CloudWatchBackend,
    Dimension,
    Metric,
    MetricDataQuery,
    MetricStat,
    cloudwatch_backends,
)
from moto.core.common_models import CloudFormationModel

from .base import ResourceHandler, json_text, require, tag_list


class CloudWatchHandler(ResourceHandler):
    @property
    def backend(self) -> CloudWatchBackend:
        return cloudwatch_backends[self.account_id][self.region_name]


class Alarm(CloudWatchHandler, CloudFormationModel):
    TYPE = "AWS::CloudWatch::Alarm"
    NAME_PROPERTY = "AlarmName"
    CREATE_ONLY = ("AlarmName",)
    ATTRIBUTES = ("Arn",)

    def create(self, name: str, properties: dict[str, Any]) -> None:
        self.physical_id = name
        self.put(properties)

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        # PutMetricAlarm on an existing name replaces the alarm's definition, as on AWS.
        self.backend.tagger.delete_all_tags_for_resource(
            self.backend.alarms[self.physical_id].alarm_arn
        )
        self.put(new)

    def put(self, properties: dict[str, Any]) -> None:
        require(properties, self.TYPE, "ComparisonOperator", "EvaluationPeriods")
        threshold = properties.get("Threshold")
        self.backend.put_metric_alarm(
            name=self.physical_id,
            namespace=properties.get("Namespace"),
            metric_name=properties.get("MetricName"),
            metric_data_queries=metric_data_queries(properties.get("Metrics")),
            comparison_operator=properties["ComparisonOperator"],
            evaluation_periods=int(properties["EvaluationPeriods"]),
            datapoints_to_alarm=properties.get("DatapointsToAlarm"),
            period=properties.get("Period"),
            threshold=float(threshold) if threshold is not None else None,
            statistic=properties.get("Statistic"),
            extended_statistic=properties.get("ExtendedStatistic"),
            description=properties.get("AlarmDescription"),
            dimensions=list(properties.get("Dimensions") or []),
            alarm_actions=list(properties.get("AlarmActions") or []),
            ok_actions=list(properties.get("OKActions") or []),
            insufficient_data_actions=list(properties.get("InsufficientDataActions") or []),
            unit=properties.get("Unit"),
            actions_enabled=bool(properties.get("ActionsEnabled", True)),
            treat_missing_data=properties.get("TreatMissingData"),
            evaluate_low_sample_count_percentile=properties.get("EvaluateLowSampleCountPercentile"),
            threshold_metric_id=properties.get("ThresholdMetricId"),
            tags=tag_list(properties),
        )

    def destroy(self) -> None:
        self.backend.delete_alarms([self.physical_id])

    def attribute(self, name: str) -> Any:
        return self.backend.alarms[self.physical_id].alarm_arn


def metric_data_queries(metrics: list[dict[str, Any]] | None) -> list[MetricDataQuery] | None:
    """An alarm's `Metrics` (metric math) as moto's query objects, as its PutMetricAlarm builds them."""
    if not metrics:
        return None
    queries = []
    for metric in metrics:
        stat = metric.get("MetricStat")
        metric_stat = None
        if stat:
            described = stat["Metric"]
            metric_stat = MetricStat(
                metric=Metric(
                    metric_name=described.get("MetricName"),
                    namespace=described.get("Namespace"),
                    dimensions=[
                        Dimension(item["Name"], item["Value"])
                        for item in described.get("Dimensions") or []
                    ],
                ),
                period=stat.get("Period"),
                stat=stat.get("Stat"),
                unit=stat.get("Unit"),
            )
        queries.append(
            MetricDataQuery(
                query_id=metric["Id"],
                label=metric.get("Label"),
                period=metric.get("Period"),
                return_data=metric.get("ReturnData"),
                expression=metric.get("Expression"),
                metric_stat=metric_stat,
            )
        )
    return queries


class Dashboard(CloudWatchHandler, CloudFormationModel):
    TYPE = "AWS::CloudWatch::Dashboard"
    NAME_PROPERTY = "DashboardName"
    CREATE_ONLY = ("DashboardName",)
    ATTRIBUTES = ()  # Ref is the dashboard name; the real type has no GetAtt attributes

    def create(self, name: str, properties: dict[str, Any]) -> None:
        require(properties, self.TYPE, "DashboardBody")
        self.physical_id = name
        self.update({}, properties)

    def update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.backend.put_dashboard(self.physical_id, json_text(new["DashboardBody"]))

    def destroy(self) -> None:
        self.backend.dashboards.pop(self.physical_id, None)
