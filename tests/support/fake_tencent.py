"""A local stand-in for Tencent Cloud SMS ``SendSms`` (API 2021-01-11) on 127.0.0.1.

It checks each request's TC3-HMAC-SHA256 signature and answers from a script of outcomes:
``ok``, ``status:<code>`` (a failed ``SendStatusSet``), ``error:<code>`` (a failed call),
``http:<status>`` or ``sleep:<seconds>`` (slower than the client's timeout). Once the script
runs out it answers ``ok``.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from luffy.user.sms_providers import tc3_authorization

SECRET_ID = "AKIDfakeTencentSecretId0000000000"
SECRET_KEY = "fake-tencent-secret-key-0000000000"


class FakeTencent:
    def __init__(self, script: list[str] | None = None) -> None:
        self.script = list(script or [])
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                fake._record(dict(self.headers), body)
                fake._answer(self, dict(self.headers), body)

            def log_message(self, *_args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def settings(self, **overrides: str) -> dict[str, str]:
        """The ``LUFFY_*`` variables that point the ``tencent`` provider here."""
        return {
            "LUFFY_SMS_PROVIDER": "tencent",
            "LUFFY_TENCENT_SECRET_ID": SECRET_ID,
            "LUFFY_TENCENT_SECRET_KEY": SECRET_KEY,
            "LUFFY_TENCENT_SDK_APP_ID": "1400006666",
            "LUFFY_TENCENT_SIGN_NAME": "路飞学城",
            "LUFFY_TENCENT_TEMPLATE_ID": "1110",
            "LUFFY_TENCENT_REGION": "ap-guangzhou",
            "LUFFY_TENCENT_ENDPOINT": self.endpoint,
            "LUFFY_TENCENT_SCHEME": "http",
            **overrides,
        }

    def _record(self, headers: dict[str, str], body: bytes) -> None:
        expected = tc3_authorization(
            secret_id=SECRET_ID,
            secret_key=SECRET_KEY,
            host=headers.get("Host", ""),
            payload=body,
            timestamp=int(headers.get("X-TC-Timestamp", "0")),
        )
        with self._lock:
            self.requests.append(
                {"headers": headers, "body": json.loads(body), "signed": headers.get("Authorization") == expected}
            )

    def _next(self) -> str:
        with self._lock:
            return self.script.pop(0) if self.script else "ok"

    def _answer(self, handler: BaseHTTPRequestHandler, headers: dict[str, str], body: bytes) -> None:
        outcome, _, argument = self._next().partition(":")
        request_id = f"fake-{len(self.requests)}"
        if outcome == "sleep":
            time.sleep(float(argument))
            outcome = "ok"
        if outcome == "http":
            self._send(handler, int(argument), {"message": "upstream failure"})
            return
        if not self.requests[-1]["signed"]:
            outcome, argument = "error", "AuthFailure.SignatureFailure"
        if outcome == "error":
            reply = {"Error": {"Code": argument, "Message": "fake failure"}, "RequestId": request_id}
        else:
            phone = json.loads(body)["PhoneNumberSet"][0]
            code = "Ok" if outcome == "ok" else argument
            status = {"SerialNo": "2640:fake", "PhoneNumber": phone, "Fee": 1, "SessionContext": "", "Code": code}
            reply = {"SendStatusSet": [{**status, "Message": "send success", "IsoCode": "CN"}], "RequestId": request_id}
        self._send(handler, 200, {"Response": reply})

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
