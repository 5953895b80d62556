"""An HTTP proxy in front of the S3 server for the credential-scope test, run as its
own process: forwards every request unchanged (Host header included, so SigV4
signatures stay valid) to ``TARGET`` and appends one JSON line per request to a
log file: method, path and the ``Authorization`` header received (or null).

    python recording_proxy.py TARGET_HOST:PORT RECORDS_FILE    # prints the port, then serves
"""

from __future__ import annotations

import http.client
import http.server
import json
import sys


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    target = ""
    records = ""

    def log_message(self, *args):
        pass

    def _forward(self):
        with open(self.records, "a") as f:
            f.write(json.dumps({"method": self.command, "path": self.path,
                                "authorization": self.headers.get("Authorization")}) + "\n")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        host, port = self.target.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        conn.close()

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward


def main() -> None:
    Proxy.target, Proxy.records = sys.argv[1], sys.argv[2]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
