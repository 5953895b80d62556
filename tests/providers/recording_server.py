"""A small static HTTP server for the provider tests, run as its own process.

It serves a folder over HTTP/1.1 with single byte-range support (what GDAL's
/vsicurl/ needs) and appends one JSON line per request to a log file: method, path
and the ``Authorization`` header it received (or null). Run it in a child process,
not a thread: GDAL holds the GIL while it reads, so an in-process server would
deadlock a rasterio read.

    python recording_server.py ROOT RECORDS_FILE    # prints the port, then serves
"""

from __future__ import annotations

import http.server
import json
import os
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    records_file = ""

    def log_message(self, *args):
        pass

    def _record(self):
        line = json.dumps({"method": self.command, "path": self.path, "range": self.headers.get("Range"),
                           "authorization": self.headers.get("Authorization")})
        with open(self.records_file, "a") as f:
            f.write(line + "\n")

    def do_HEAD(self):
        self._record()
        super().do_HEAD()

    def do_GET(self):
        self._record()
        rng = self.headers.get("Range")
        path = self.translate_path(self.path)
        if not rng or not os.path.isfile(path):
            return super().do_GET()
        size = os.path.getsize(path)
        try:
            unit, spec = rng.split("=", 1)
            start_s, end_s = spec.split(",")[0].strip().split("-")
            if start_s == "":
                start, end = max(0, size - int(end_s)), size - 1
            else:
                start = int(start_s)
                end = min(int(end_s), size - 1) if end_s else size - 1
            if unit.strip() != "bytes" or start > end or start >= size:
                raise ValueError(rng)
        except ValueError:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        with open(path, "rb") as f:
            f.seek(start)
            body = f.read(end - start + 1)
        self.send_response(206)
        self.send_header("Content-Type", "image/tiff")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main(argv: list[str]) -> None:
    root, records = argv[1], argv[2]
    Handler.records_file = records
    open(records, "a").close()

    def factory(*args, **kwargs):
        return Handler(*args, directory=root, **kwargs)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), factory)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv)
