"""moto's standalone S3-compatible server for the object-storage tests, run with the
interpreter of the venv that ``scripts/setup_s3.sh`` makes (``.venv-s3``).

It starts moto's server on 127.0.0.1 (the port given, 0 = any free one), creates an
IAM user with a policy allowing every S3 action and an access key for it through
moto's own IAM API, then switches moto's IAM authentication on
(``/moto-api/reset-auth``): from then on every request must be signed (SigV4) with
that key, a wrong key or secret answers 403 (``InvalidAccessKeyId``,
``SignatureDoesNotMatch``) as AWS does.  It prints one JSON line
``{"endpoint": "127.0.0.1:PORT", "access_key_id", "secret_access_key"}`` and serves
until its standard input closes (so it ends with the test process that started it).

    .venv-s3/bin/python tests/s3/s3server.py [PORT]
"""

from __future__ import annotations

import json
import sys
import urllib.request


def main() -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boot = dict(endpoint_url=url, region_name="us-east-1",
                aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
    iam = boto3.client("iam", **boot)
    iam.create_user(UserName="leafmap")
    iam.put_user_policy(UserName="leafmap", PolicyName="s3-all", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }))
    key = iam.create_access_key(UserName="leafmap")["AccessKey"]
    # from now on every request is authenticated
    req = urllib.request.Request(url + "/moto-api/reset-auth", data=b"0", method="POST",
                                 headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(req).read()
    print(json.dumps({"endpoint": f"{host}:{port}", "access_key_id": key["AccessKeyId"],
                      "secret_access_key": key["SecretAccessKey"]}), flush=True)
    try:
        sys.stdin.read()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
