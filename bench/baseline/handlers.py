"""The ORIGINAL design's Python Lambda functions, re-created for the benchmark (not
eks-canary's code): the version counter in SSM (read before, written after a
deployment) and the health check, a boto3 GetMetricData of the Sum of `5xx-<service>`
per minute over the last `failure_threshold_time` seconds, unhealthy when the sum
exceeds `failure_threshold_value`. Clients are created at import, as in a Lambda module.
"""
import datetime

import boto3

cloudwatch = boto3.client("cloudwatch")
ssm = boto3.client("ssm")


def _parameter(event):
    return "/eks-canary-%s-version" % event["microservice_name"]


def check_version(event, context=None):
    """Returns the next version (the stored one plus 1, or 1)."""
    try:
        current = int(ssm.get_parameter(Name=_parameter(event))["Parameter"]["Value"])
    except ssm.exceptions.ParameterNotFound:
        current = 0
    return {"new_version": current + 1, "current_percentage": 0}


def gather_health(event, context=None):
    """True when the 5xx sum of the window is at most the threshold (no data: healthy)."""
    service = event["microservice_name"]
    threshold = event.get("failure_threshold_value") or 0
    window = event.get("failure_threshold_time") or 600
    end = datetime.datetime.now(datetime.timezone.utc)
    start = end - datetime.timedelta(seconds=window)
    answer = cloudwatch.get_metric_data(
        MetricDataQueries=[{
            "Id": "errors",
            "MetricStat": {
                "Metric": {"Namespace": "EnvoyPrometheus/ResponseCode",
                           "MetricName": "5xx-%s" % service},
                "Period": 60,
                "Stat": "Sum",
            },
            "ReturnData": True,
        }],
        StartTime=start,
        EndTime=end,
        ScanBy="TimestampDescending",
    )
    values = answer["MetricDataResults"][0].get("Values") or []
    return not (values and sum(values) > threshold)


def update_version(event, context=None):
    """Stores the deployed version."""
    ssm.put_parameter(Name=_parameter(event), Value=str(event["deployment"]["new_version"]),
                      Type="String", Overwrite=True)
    return {}
