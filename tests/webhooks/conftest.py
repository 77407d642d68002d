"""A local webhook receiver that verifies each delivery with the Standard Webhooks reference
library (standardwebhooks on PyPI) and can be switched off ("down") and on again."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


class Receiver:
    def __init__(self):
        self.secrets: list[str] = []  # it knows these endpoints' secrets (one receiver, several endpoints)
        self.status = 204         # what it answers while up
        self.up = True
        self.received: list[dict] = []  # verified deliveries: {"id", "type", "data", "headers"}
        self.unverified = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if not receiver.up:
                    self.send_response(503)
                    self.end_headers()
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                payload = None
                for secret in receiver.secrets:
                    try:
                        payload = Webhook(secret).verify(body, headers)
                        break
                    except WebhookVerificationError:
                        continue
                if payload is None:
                    with receiver.lock:
                        receiver.unverified += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                if receiver.status < 300:
                    with receiver.lock:
                        receiver.received.append({"id": headers["webhook-id"], "type": payload["type"],
                                                  "data": payload["data"], "headers": headers,
                                                  "body": json.loads(body)})
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"ok" if receiver.status < 300 else b"nope")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/manabi"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def ids(self) -> list[str]:
        return [r["id"] for r in self.received]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def app_config(app_config):
    return {**app_config, "LMS_WEBHOOK_ALLOWED_HOSTS": ("127.0.0.1", "*.example.lg.jp"),
            "LMS_WEBHOOK_ALLOW_PRIVATE": True, "LMS_WEBHOOK_TIMEOUT": 3.0}
