"""A local stand-in for the Anthropic Messages API, for tests and the bench (127.0.0.1 only).

It speaks the real wire format, so the official SDK is exercised end to end: scripted replies
(valid content, 429 with retry-after, 500, 529 overloaded, a stall past the client's timeout, a
malformed reply) and a fixed latency per request.
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Reply = Callable[[dict], str]  # request body -> the text the model "writes"


class _Server(ThreadingHTTPServer):
    """A threading server whose listen backlog holds a burst of concurrent connections (the default
    of 5 makes the kernel drop extra SYNs, stalling clients for a retransmit second)."""

    request_queue_size = 256
    daemon_threads = True


class FakeMessagesAPI:
    """`with FakeMessagesAPI(reply) as api:` serves POST /v1/messages on api.base_url."""

    def __init__(self, reply: Reply, script: list[str] | None = None, latency: float = 0.0, stall: float = 2.0,
                 retry_after: float = 0.0):
        self.reply, self.latency, self.stall, self.retry_after = reply, latency, stall, retry_after
        self.script = deque(script or [])   # per-request behaviours before the default "ok"
        self.requests: list[dict] = []
        self.arrivals: list[tuple[float, str]] = []   # (monotonic time, behaviour) per request
        self.headers: list[dict] = []
        self.lock = threading.Lock()
        self.server = _Server(("127.0.0.1", 0), self._handler())
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "FakeMessagesAPI":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _next(self, body: dict) -> str:
        with self.lock:
            self.requests.append(body)
            behaviour = self.script.popleft() if self.script else "ok"
            self.arrivals.append((time.monotonic(), behaviour))
            return behaviour

    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"   # keep-alive, as the real API: the SDK reuses connections
            disable_nagle_algorithm = True   # no 40 ms delayed-ACK stall between headers and body
            def log_message(self, *args) -> None:
                """Keep test output clean."""

            def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
                """One JSON response."""
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                """Answer POST /v1/messages as the script says."""
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                api.headers.append({k.lower(): v for k, v in self.headers.items()})
                behaviour = api._next(body)
                time.sleep(api.latency)
                if behaviour == "stall":
                    time.sleep(api.stall)
                if behaviour in ("429", "500", "529"):
                    kind = {"429": "rate_limit_error", "500": "api_error", "529": "overloaded_error"}[behaviour]
                    headers = {"retry-after": str(api.retry_after)} if behaviour == "429" else {}
                    self._send(int(behaviour), {"type": "error", "error": {"type": kind, "message": behaviour}}, headers)
                    return
                text = "I am not JSON at all" if behaviour == "malformed" else api.reply(body)
                self._send(200, {"id": f"msg_{len(api.requests)}", "type": "message", "role": "assistant",
                                 "model": body.get("model", "fake"), "content": [{"type": "text", "text": text}],
                                 "stop_reason": "end_turn", "stop_sequence": None,
                                 "usage": {"input_tokens": 100, "output_tokens": 400}})

        return Handler
