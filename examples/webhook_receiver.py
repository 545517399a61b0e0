#!/usr/bin/env python3
"""A Keymint webhook receiver, standard library only.

It checks every delivery the way the Standard Webhooks specification says:
the HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}" keyed with the
secret's bytes, compared in constant time against each "v1,<base64>" in
webhook-signature (two are sent for a day after a secret rotation), and a
timestamp within five minutes. Deliveries are at least once: a repeated
webhook-id is acknowledged and not processed again.

    KEYMINT_WEBHOOK_SECRET=whsec_... python3 examples/webhook_receiver.py [PORT]

It prints "listening on PORT", then one line per new event:
"<type> <key id> <key name>".
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

SECRET = base64.b64decode(os.environ["KEYMINT_WEBHOOK_SECRET"].removeprefix("whsec_"))
TOLERANCE_SECONDS = 5 * 60
seen = set()


def authentic(headers, body):
    msg_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(SECRET, signed, hashlib.sha256).digest()).decode()
    return any(
        hmac.compare_digest(candidate.removeprefix("v1,"), expected)
        for candidate in headers.get("webhook-signature", "").split()
        if candidate.startswith("v1,")
    )


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if not authentic(self.headers, body):
            self.send_response(401)
            self.end_headers()
            return
        msg_id = self.headers["webhook-id"]
        if msg_id not in seen:
            seen.add(msg_id)
            event = json.loads(body)
            print(event["type"], event["data"]["id"], event["data"]["name"], flush=True)
        # Any 2xx is success; anything else is retried with backoff.
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 9000), Handler)
print("listening on", server.server_address[1], flush=True)
server.serve_forever()
