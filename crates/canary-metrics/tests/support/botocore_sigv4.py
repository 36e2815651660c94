"""Prints, as JSON, the headers botocore's SigV4Auth adds to a GET of args["url"] for
service `aps`, for fixed inputs given as JSON on argv[1]: url, region, access_key,
secret_key, session_token (or null), time ("YYYY-MM-DDTHH:MM:SS", UTC)."""
import datetime
import json
import sys

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

args = json.loads(sys.argv[1])
fixed = datetime.datetime.strptime(args["time"], "%Y-%m-%dT%H:%M:%S")
# botocore stamps X-Amz-Date with this function: freeze it.
botocore.auth.get_current_datetime = lambda *a, **k: fixed

creds = Credentials(args["access_key"], args["secret_key"], args["session_token"])
request = AWSRequest(method="GET", url=args["url"])
botocore.auth.SigV4Auth(creds, "aps", args["region"]).add_auth(request)
print(json.dumps({k.lower(): v for k, v in request.headers.items()}))
