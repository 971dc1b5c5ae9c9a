"""A local stand-in for the Anthropic Messages API, for tests and the bench (127.0.0.1 only).

It speaks the real wire format, so the official SDK is exercised end to end: scripted replies
(valid content, 429 with retry-after, 500, 529 overloaded, a stall past the client's timeout, a
malformed reply), a fixed latency per request, and the Message Batches endpoints (create, poll,
JSON Lines results).
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
                 retry_after: float = 0.0, batch_polls: int = 2):
        """Bind 127.0.0.1 on a free port; `reply(body)` gives the text of each ok reply."""
        self.reply, self.latency, self.stall, self.retry_after = reply, latency, stall, retry_after
        self.batch_polls = batch_polls              # status polls before a Message Batch reports "ended"
        self.batches: dict[str, dict] = {}
        self.script = deque(script or [])   # per-request behaviours before the default "ok"
        self.requests: list[dict] = []
        self.arrivals: list[tuple[float, str]] = []   # (monotonic time, behaviour) per request
        self.headers: list[dict] = []
        self.lock = threading.Lock()
        self.server = _Server(("127.0.0.1", 0), self._handler())
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "FakeMessagesAPI":
        """Start serving in a daemon thread."""
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()

    def _next(self, body: dict) -> str:
        """Record a request and return its scripted behaviour (default "ok")."""
        with self.lock:
            self.requests.append(body)
            behaviour = self.script.popleft() if self.script else "ok"
            self.arrivals.append((time.monotonic(), behaviour))
            return behaviour

    def _message(self, body: dict, behaviour: str) -> dict:
        """The Messages API reply to `body`: the scripted text or a malformed one."""
        text = "I am not JSON at all" if behaviour == "malformed" else self.reply(body)
        return {"id": f"msg_{len(self.requests)}", "type": "message", "role": "assistant",
                "model": body.get("model", "fake"), "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn", "stop_sequence": None, "usage": {"input_tokens": 100, "output_tokens": 400}}

    def _create_batch(self, body: dict) -> dict:
        """Queue a Message Batch; its results are fixed now and served after `batch_polls` status polls.
        Script entries apply per request: "malformed" gives an unparseable reply, "errored" a failed one."""
        results = []
        for request in body["requests"]:
            behaviour = self._next(request["params"])
            result = ({"type": "errored", "error": {"type": "error", "error": {"type": "api_error", "message": "boom"}}}
                      if behaviour == "errored" else {"type": "succeeded",
                                                      "message": self._message(request["params"], behaviour)})
            results.append({"custom_id": request["custom_id"], "result": result})
        with self.lock:
            batch_id = f"msgbatch_{len(self.batches) + 1}"
            self.batches[batch_id] = {"results": results, "polls": self.batch_polls}
        return self._batch_object(batch_id)

    def _batch_object(self, batch_id: str) -> dict:
        """The MessageBatch record: in progress until its polls run out, then ended with a results URL."""
        batch = self.batches[batch_id]
        ended = batch["polls"] <= 0
        kinds = [r["result"]["type"] for r in batch["results"]]
        counts = {"processing": 0 if ended else len(kinds), "succeeded": kinds.count("succeeded") if ended else 0,
                  "errored": kinds.count("errored") if ended else 0, "canceled": 0, "expired": 0}
        return {"id": batch_id, "type": "message_batch", "processing_status": "ended" if ended else "in_progress",
                "request_counts": counts, "created_at": "2026-01-01T00:00:00Z", "expires_at": "2026-01-02T00:00:00Z",
                "ended_at": "2026-01-01T01:00:00Z" if ended else None, "archived_at": None,
                "cancel_initiated_at": None,
                "results_url": f"{self.base_url}/v1/messages/batches/{batch_id}/results" if ended else None}

    def _handler(self):
        """The request handler class bound to this fake."""
        api = self

        class Handler(BaseHTTPRequestHandler):
            """HTTP/1.1 handler for the Messages and Message Batches endpoints."""

            protocol_version = "HTTP/1.1"   # keep-alive, as the real API: the SDK reuses connections
            disable_nagle_algorithm = True   # no 40 ms delayed-ACK stall between headers and body

            def log_message(self, *args) -> None:
                """Keep test output clean."""

            def _send(self, status: int, payload: dict | bytes, headers: dict | None = None) -> None:
                """One JSON (or, given bytes, JSON Lines) response."""
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/x-jsonl" if isinstance(payload, bytes)
                                 else "application/json")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                """A Message Batch's status, or its results as JSON Lines once it has ended."""
                parts = self.path.split("?")[0].strip("/").split("/")   # v1 messages batches ID [results]
                batch = api.batches.get(parts[3]) if len(parts) >= 4 else None
                if batch is None:
                    self._send(404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}})
                elif len(parts) == 5 and parts[4] == "results":
                    self._send(200, b"".join(json.dumps(r).encode() + b"\n" for r in batch["results"]))
                else:
                    with api.lock:
                        batch["polls"] -= 1
                    self._send(200, api._batch_object(parts[3]))

            def do_POST(self) -> None:
                """Answer POST /v1/messages as the script says; POST /v1/messages/batches queues a batch."""
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                api.headers.append({k.lower(): v for k, v in self.headers.items()})
                if self.path.split("?")[0].rstrip("/").endswith("/batches"):
                    self._send(200, api._create_batch(body))
                    return
                behaviour = api._next(body)
                time.sleep(api.latency)
                if behaviour == "stall":
                    time.sleep(api.stall)
                if behaviour in ("429", "500", "529"):
                    kind = {"429": "rate_limit_error", "500": "api_error", "529": "overloaded_error"}[behaviour]
                    headers = {"retry-after": str(api.retry_after)} if behaviour == "429" else {}
                    error = {"type": "error", "error": {"type": kind, "message": behaviour}}
                    self._send(int(behaviour), error, headers)
                    return
                self._send(200, api._message(body, behaviour))

        return Handler
