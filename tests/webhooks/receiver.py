"""A webhook receiver for the tests: records every request it gets (one
JSON line each: the time, path, headers and body) and answers as its plan
says, one step per request, the last step repeated:

    receiver.py PORT RECORD_FILE PLAN

PLAN is comma-separated steps: a status code (`500`, `200`, `410`), `hang`
(answer nothing for 60 seconds), or `redirect=<url>` (307 to the url).
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, RECORD, PLAN = int(sys.argv[1]), sys.argv[2], sys.argv[3].split(",")
lock = threading.Lock()
seen = 0


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        global seen
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode()
        with lock:
            step = PLAN[min(seen, len(PLAN) - 1)]
            seen += 1
            with open(RECORD, "a") as record:
                record.write(json.dumps({
                    "at": time.time(), "path": self.path, "step": step,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body,
                }) + "\n")
        if step == "hang":
            time.sleep(60)
            return
        if step.startswith("redirect="):
            self.send_response(307)
            self.send_header("Location", step.split("=", 1)[1])
            self.end_headers()
            return
        self.send_response(int(step))
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
