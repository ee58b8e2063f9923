"""Transparent outbound capture, run inside a network namespace the Rust
test created (`sidecar::transparent_outbound_in_a_namespace`).

Usage: transparent.py MESHGATE_BINARY

Inside the namespace, 10.96.0.10 and 10.96.0.20 are on lo. meshgate runs
as uid 65534 with a `sidecar.transparent` listener on 127.0.0.1:15001;
iptables REDIRECTs every other process's TCP to 10.96.0.0/24 there (the
owner match keeps meshgate's own upstream connections out of the loop, as
Istio does with its proxy's uid). Checks, with plain sockets:
- 10.96.0.10:80 is listed for cluster `users` (a backend on 127.0.0.1):
  the bytes reach that backend;
- 10.96.0.20:8080 is not listed: passed through to the server there;
- a connection made to 127.0.0.1:15001 itself (not redirected) is closed;
- the metrics count each.
Exits non-zero with a message on any failure.
"""

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

NOBODY = 65534
CAPTURE = 15001
ADMIN = 15090


def serve(sock, prefix):
    """Answers each connection with prefix + everything it sent."""

    def one(conn):
        with conn:
            data = b""
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            conn.sendall(prefix + data)

    def loop():
        while True:
            conn, _ = sock.accept()
            threading.Thread(target=one, args=(conn,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()


def listen(addr):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(addr)
    s.listen(64)
    return s


def exchange(addr, payload):
    with socket.create_connection(addr, timeout=5) as c:
        c.settimeout(5)
        c.sendall(payload)
        c.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                return data
            data += chunk


def closed_without_answer(addr, payload):
    """Whether the peer closed (FIN or reset) without sending a byte."""
    try:
        return exchange(addr, payload) == b""
    except (ConnectionResetError, OSError) as e:
        # Closed with our bytes unread: the kernel answers with a reset.
        return e.errno in (104, 107, 32)


def metric(text, name, labels):
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def sh(*cmd):
    subprocess.run(cmd, check=True)


def main():
    binary = sys.argv[1]
    users = listen(("127.0.0.1", 0))
    serve(users, b"users:")
    outside = listen(("10.96.0.20", 8080))
    serve(outside, b"direct:")
    work = tempfile.mkdtemp()
    os.chmod(work, 0o755)
    config = os.path.join(work, "sidecar.toml")
    with open(config, "w") as f:
        f.write(
            f"""
[admin]
address = "127.0.0.1:{ADMIN}"

[[clusters]]
name = "users"
endpoints = [{{ address = "127.0.0.1:{users.getsockname()[1]}" }}]

[sidecar]
transparent = {{ address = "127.0.0.1:{CAPTURE}" }}

[[sidecar.outbound]]
cluster = "users"
destinations = ["10.96.0.10:80"]
"""
        )
    os.chmod(config, 0o644)
    gw = subprocess.Popen(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", binary, "run", "-c", config],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", ADMIN), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or gw.poll() is not None:
                    gw.kill()
                    sys.exit("meshgate did not start:\n" + gw.stdout.read().decode(errors="replace"))
                time.sleep(0.05)
        sh(
            "iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", "10.96.0.0/24",
            "-m", "owner", "!", "--uid-owner", str(NOBODY),
            "-j", "REDIRECT", "--to-ports", str(CAPTURE),
        )
        got = exchange(("10.96.0.10", 80), b"hello")
        assert got == b"users:hello", f"a listed destination reaches its cluster: {got!r}"
        got = exchange(("10.96.0.20", 8080), b"hi")
        assert got == b"direct:hi", f"an unlisted destination passes through: {got!r}"
        assert closed_without_answer(("127.0.0.1", CAPTURE), b"loop"), "a connection made to the capture port itself is closed"
        text = urllib.request.urlopen(f"http://127.0.0.1:{ADMIN}/metrics", timeout=5).read().decode()
        checks = [
            ("meshgate_tcp_cluster_bytes_total", {"cluster": "users", "direction": "to_upstream"}, 5),
            ("meshgate_tcp_cluster_bytes_total", {"cluster": "users", "direction": "to_client"}, 11),
            ("meshgate_tcp_cluster_bytes_total", {"cluster": "passthrough", "direction": "to_upstream"}, 2),
            ("meshgate_preamble_refused_total", {"listener": "sidecar.transparent", "reason": "no_destination"}, 1),
        ]
        for name, labels, want in checks:
            got = metric(text, name, labels)
            assert got == want, f"{name}{labels} = {got}, want {want}"
        print("transparent capture: listed, passthrough and loop cases all as expected")
    finally:
        gw.terminate()
        try:
            gw.wait(timeout=10)
        except subprocess.TimeoutExpired:
            gw.kill()


if __name__ == "__main__":
    main()
