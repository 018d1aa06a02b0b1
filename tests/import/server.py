"""A file server for the URL import tests, on Python's http.server: serves
the files of a directory with byte ranges (`Range`, `If-Range`, `ETag`),
records each request (one JSON line: path and `Range`), and misbehaves as
the path asks:

    server.py PORT DIRECTORY RECORD_FILE [HOST]

- `/<file>`: the file, ranges allowed.
- `/drop/<file>`: the first request for it sends the headers of the whole
  file, then half of it, and closes the connection; later ones behave.
- `/norange/drop/<file>`: as `/drop/`, but ranges are never allowed.
- `/redirect/<url>`: a 302 to the URL (everything after `/redirect/`).
- `/slow/<file>`: the file, a kilobyte every fifth of a second; a client
  that goes away is recorded (`{"path", "aborted": true}`).
"""

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, ROOT, RECORD = int(sys.argv[1]), sys.argv[2], sys.argv[3]
HOST = sys.argv[4] if len(sys.argv) > 4 else "127.0.0.1"
lock = threading.Lock()
dropped = set()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        with lock, open(RECORD, "a") as record:
            record.write(json.dumps({
                "path": self.path, "range": self.headers.get("Range"),
                "if_range": self.headers.get("If-Range"),
            }) + "\n")
        path = self.path
        if path.startswith("/redirect/"):
            self.send_response(302)
            self.send_header("Location", path[len("/redirect/"):])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        ranges = True
        if path.startswith("/norange/"):
            ranges, path = False, path[len("/norange"):]
        slow = path.startswith("/slow/")
        if slow:
            path = path[len("/slow"):]
        drop = path.startswith("/drop/")
        if drop:
            path = path[len("/drop"):]
        file = os.path.join(ROOT, os.path.basename(path))
        if not os.path.isfile(file):
            self.send_error(404)
            return
        data = open(file, "rb").read()
        etag = '"%d-%d"' % (len(data), int(os.path.getmtime(file)))
        wanted = self.headers.get("Range")
        if ranges and wanted and self.headers.get("If-Range", etag) == etag:
            start = int(wanted.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
            body = data[start:]
        else:
            self.send_response(200)
            body = data
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes" if ranges else "none")
        self.end_headers()
        with lock:
            first = drop and self.path not in dropped
            dropped.add(self.path)
        if first:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if slow:
            try:
                for start in range(0, len(body), 1024):
                    self.wfile.write(body[start:start + 1024])
                    self.wfile.flush()
                    time.sleep(0.2)
            except (BrokenPipeError, ConnectionResetError):
                with lock, open(RECORD, "a") as record:
                    record.write(json.dumps({"path": self.path, "aborted": True}) + "\n")
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer((HOST, PORT), Handler).serve_forever()
