#!/usr/bin/env python3
"""Stands between the proxies and the agent while no agent endpoint lists a service's
proxies: forwards every request unchanged, except /v1/health/connect/:svc, answered from
/v1/health/service/:svc (the benchmark registers each destination at its proxy's public
port). Only configuration passes here, never the benchmarked traffic.
    discovery_shim.py LISTEN_PORT AGENT_URL"""
import http.server
import sys
import urllib.error
import urllib.request

AGENT = sys.argv[2].rstrip("/")


class Shim(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        path = self.path.replace("/v1/health/connect/", "/v1/health/service/")
        request = urllib.request.Request(AGENT + path, data=body, method=self.command)
        try:
            with urllib.request.urlopen(request, timeout=600) as r:
                status, headers, data = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, headers, data = e.code, e.headers, e.read()
        self.send_response(status)
        for name in ("X-Consul-Index", "X-Consul-ContentHash", "Content-Type"):
            if headers.get(name):
                self.send_header(name, headers[name])
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = forward

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Shim).serve_forever()
