"""Frame-level HTTP/2 scenarios against meshgate, driven by Python's `h2`
(an implementation independent of ours). Usage:

    python3 h2_client.py SCENARIO HOST PORT

Prints one JSON object with what happened; the Rust test asserts on it.
Every socket read has a timeout, so a scenario never hangs.
"""

import json
import socket
import sys

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

TIMEOUT = 10.0


class Client:
    def __init__(self, host, port, validate=True, window=None):
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        config = h2.config.H2Configuration(
            client_side=True,
            validate_outbound_headers=validate,
            normalize_outbound_headers=validate,
        )
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        if window is not None:
            self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.flush()
        self.responses = {}  # stream -> {"status", "headers", "body", "ended", "reset"}
        self.events = []
        self.closed = False
        self.server_settings = {}

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path, method="GET", headers=(), body=None, end=True):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", "http"), (":authority", "test"), (":path", path)]
        hdrs += list(headers)
        self.conn.send_headers(sid, hdrs, end_stream=end and body is None)
        if body is not None:
            self.send_body(sid, body, end=end)
        self.flush()
        self.responses[sid] = {"status": None, "headers": {}, "body": b"", "ended": False, "reset": None}
        return sid

    def send_body(self, sid, body, end=True):
        # Respect the server's windows, as a real client must.
        while body:
            window = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
            if window <= 0:
                self.read_once()
                continue
            chunk, body = body[:window], body[window:]
            self.conn.send_data(sid, chunk, end_stream=end and not body)
            self.flush()
        if end and body == b"" and not self.conn._get_stream_by_id(sid).closed:
            pass

    def read_once(self):
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise SystemExit(json.dumps({"error": "timeout", "events": self.events}))
        if not data:
            self.closed = True
            return
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            self.events.append("client-protocol-error: %s" % e)
            self.closed = True
            return
        for ev in events:
            self.on_event(ev)
        self.flush()

    def on_event(self, ev):
        if not isinstance(ev, (h2.events.DataReceived, h2.events.WindowUpdated)):
            self.events.append(type(ev).__name__)
        if isinstance(ev, h2.events.RemoteSettingsChanged):
            for code, setting in ev.changed_settings.items():
                self.server_settings[int(code)] = setting.new_value
        elif isinstance(ev, h2.events.ResponseReceived):
            r = self.responses.setdefault(ev.stream_id, {"status": None, "headers": {}, "body": b"", "ended": False, "reset": None})
            for k, v in ev.headers:
                k = k.decode() if isinstance(k, bytes) else k
                v = v.decode() if isinstance(v, bytes) else v
                if k == ":status":
                    r["status"] = int(v)
                else:
                    r["headers"][k] = v
        elif isinstance(ev, h2.events.DataReceived):
            r = self.responses[ev.stream_id]
            r["body"] += ev.data
            self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.TrailersReceived):
            r = self.responses[ev.stream_id]
            r["trailers"] = {k.decode(): v.decode() for k, v in ev.headers}
        elif isinstance(ev, h2.events.StreamEnded):
            self.responses[ev.stream_id]["ended"] = True
        elif isinstance(ev, h2.events.StreamReset):
            self.responses.setdefault(ev.stream_id, {"status": None, "headers": {}, "body": b"", "ended": False, "reset": None})
            self.responses[ev.stream_id]["reset"] = int(ev.error_code)
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.events.append("goaway:%d" % int(ev.error_code))

    def wait(self, sid):
        while not self.closed:
            r = self.responses.get(sid)
            if r and (r["ended"] or r["reset"] is not None):
                return r
            self.read_once()
        return self.responses.get(sid)

    def wait_close(self):
        while not self.closed:
            self.read_once()


def summary(r):
    if r is None:
        return None
    out = dict(r)
    out["body_len"] = len(r["body"])
    out["body"] = r["body"][:65536].decode("latin-1")
    return out


def main():
    scenario, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    result = {}
    if scenario == "basics":
        c = Client(host, port)
        c.conn.ping(b"12345678")
        c.flush()
        sid = c.request("/direct")
        result["direct"] = summary(c.wait(sid))
        sid = c.request("/proxied?q=1", headers=[("x-test", "yes")])
        result["proxied"] = summary(c.wait(sid))
        result["settings"] = c.server_settings
        result["events"] = c.events
    elif scenario == "malformed":
        c = Client(host, port, validate=False)
        bad = c.request("/direct", headers=[("X-Upper", "1")])
        result["bad"] = summary(c.wait(bad))
        good = c.request("/direct")
        result["good"] = summary(c.wait(good))
    elif scenario == "continuation":
        c = Client(host, port)
        sid = c.request("/echo", headers=[("x-big", "b" * 40000)])
        result["big"] = summary(c.wait(sid))
    elif scenario == "too_large":
        c = Client(host, port)
        sid = c.request("/echo", headers=[("x-big", "b" * 20000)])
        result["big"] = summary(c.wait(sid))
        sid = c.request("/direct")
        result["after"] = summary(c.wait(sid))
    elif scenario == "flow":
        # A small client window: the server must wait for WINDOW_UPDATE.
        c = Client(host, port, window=1024)
        body = bytes(range(256)) * (3 * 1024 * 1024 // 256)
        sid = c.request("/upload", method="POST", body=body)
        r = c.wait(sid)
        result["flow"] = summary(r)
        result["same"] = r is not None and r["body"] == body
    elif scenario == "reset":
        c = Client(host, port)
        sid = c.request("/upload", method="POST", body=b"partial", end=False)
        c.conn.reset_stream(sid)
        c.flush()
        sid = c.request("/direct")
        result["after"] = summary(c.wait(sid))
    elif scenario == "rapid_reset":
        # Open and reset streams as fast as possible (CVE-2023-44487).
        c = Client(host, port)
        for _ in range(1500):
            sid = c.conn.get_next_available_stream_id()
            c.conn.send_headers(sid, [(":method", "GET"), (":scheme", "http"), (":authority", "test"), (":path", "/proxied")])
            c.conn.reset_stream(sid)
            try:
                c.flush()
            except (BrokenPipeError, ConnectionResetError):
                break
        c.wait_close()
        result["events"] = [e for e in c.events if e.startswith("goaway")]
    elif scenario == "bad_preface":
        s = socket.create_connection((host, port), timeout=TIMEOUT)
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        result["closed"] = True
        result["bytes"] = data.hex()
    else:
        raise SystemExit("unknown scenario " + scenario)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
