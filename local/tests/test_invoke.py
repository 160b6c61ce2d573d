"""LambdaEndpoint keeps cargo lambda clear of the queue depth at which it deadlocks."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from portcullis_local.invoke import MAX_IN_FLIGHT_PER_FUNCTION, LambdaEndpoint


class _BusyFunction(ThreadingHTTPServer):
    """Answers every invocation after a while, counting how many it holds at once."""

    request_queue_size = 1024
    daemon_threads = True

    def __init__(self):
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                with server.lock:
                    server.in_flight += 1
                    server.most_in_flight = max(server.most_in_flight, server.in_flight)
                time.sleep(0.2)  # the function's work, so that invocations overlap
                with server.lock:
                    server.in_flight -= 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)


def test_a_burst_past_the_limit_waits_its_turn_and_is_answered():
    function = _BusyFunction()
    threading.Thread(target=function.serve_forever, daemon=True).start()
    endpoint = LambdaEndpoint("127.0.0.1", function.server_address[1], timeout=30)
    callers = 2 * MAX_IN_FLIGHT_PER_FUNCTION + 20
    try:
        with ThreadPoolExecutor(max_workers=callers) as pool:
            results = list(pool.map(lambda _: endpoint.invoke("busy", b"{}").status, range(callers)))
    finally:
        function.shutdown()
        function.server_close()

    assert results == [200] * callers
    assert function.most_in_flight <= MAX_IN_FLIGHT_PER_FUNCTION
