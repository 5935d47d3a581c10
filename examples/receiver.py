#!/usr/bin/env python3
"""A tiny doorcheck webhook receiver: verifies Standard Webhooks signatures with plain `hmac`
and prints each event once (standard library only).

    WEBHOOK_SECRET=whsec_... python examples/receiver.py --port 8000
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import time
from collections import OrderedDict
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_S = 5 * 60  # refuse replays of old messages
SEEN: OrderedDict[str, None] = OrderedDict()  # recent webhook-ids: delivery is at-least-once


def verify(headers: Mapping[str, str], body: bytes, secrets: list[str], now: int) -> bool:
    """True if `body` was signed with one of `secrets` (``whsec_…``) within the tolerance."""
    msg_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not (msg_id and timestamp.isdigit() and signatures):
        return False
    if abs(now - int(timestamp)) > TOLERANCE_S:
        return False
    signed = f"{msg_id}.{timestamp}.".encode() + body
    for secret in secrets:
        key = base64.b64decode(secret.removeprefix("whsec_"))
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        for candidate in signatures.split(" "):
            version, _, value = candidate.partition(",")
            if version == "v1" and hmac.compare_digest(value, expected):
                return True
    return False


class Receiver(BaseHTTPRequestHandler):
    secrets: list[str] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        if not verify(headers, body, self.secrets, int(time.time())):
            self.send_response(401)
            self.end_headers()
            return
        msg_id = headers["webhook-id"]
        if msg_id not in SEEN:  # a retry of something already handled: acknowledge, skip
            SEEN[msg_id] = None
            if len(SEEN) > 10_000:
                SEEN.popitem(last=False)
            event = json.loads(body)
            print(msg_id, event["type"], json.dumps(event["data"]), flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: events are printed above


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    # During a rotation, give both: WEBHOOK_SECRET="whsec_new whsec_old".
    Receiver.secrets = os.environ.get("WEBHOOK_SECRET", "").split()
    if not Receiver.secrets:
        sys.exit("set WEBHOOK_SECRET to the endpoint's whsec_… secret")
    server = ThreadingHTTPServer((args.host, args.port), Receiver)
    print(f"listening on http://{args.host}:{args.port}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
