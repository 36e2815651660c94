"""Prints the presigned STS GetCallerIdentity URL that `aws eks get-token` builds,
for fixed inputs given as JSON on argv[1]: region, cluster, access_key, secret_key,
session_token (or null), time ("YYYY-MM-DDTHH:MM:SS", UTC)."""
import datetime
import json
import sys

import botocore.auth
import botocore.session

args = json.loads(sys.argv[1])
fixed = datetime.datetime.strptime(args["time"], "%Y-%m-%dT%H:%M:%S")
# botocore stamps X-Amz-Date with this function: freeze it.
botocore.auth.get_current_datetime = lambda *a, **k: fixed

session = botocore.session.Session()
sts = session.create_client(
    "sts",
    region_name=args["region"],
    aws_access_key_id=args["access_key"],
    aws_secret_access_key=args["secret_key"],
    aws_session_token=args["session_token"],
)

HEADER = "x-k8s-aws-id"


def take_header_param(params, context, **kwargs):
    if HEADER in params:
        context[HEADER] = params.pop(HEADER)


def add_header(request, **kwargs):
    if HEADER in request.context:
        request.headers[HEADER] = request.context[HEADER]


# The same two hooks as awscli's customizations/eks/get_token.py.
sts.meta.events.register("provide-client-params.sts.GetCallerIdentity", take_header_param)
sts.meta.events.register("before-sign.sts.GetCallerIdentity", add_header)
print(
    sts.generate_presigned_url(
        "get_caller_identity",
        Params={HEADER: args["cluster"]},
        ExpiresIn=60,
        HttpMethod="GET",
    )
)
