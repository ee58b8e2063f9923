"""Test backends for the tcp-listener tests (real TLS and an independent
PROXY protocol reader), each on 127.0.0.1:0; prints its port, then serves.

  l4_backend.py tls NAME CERT KEY   TLS server: answers "NAME saw SNI <sni>: <line>"
  l4_backend.py proxy               reads a PROXY v1 or v2 header itself and answers
                                    "src=IP:PORT dst=IP:PORT v=1|2", or "bad header"
"""
import socket, ssl, struct, sys, threading


def serve(handler):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    print(s.getsockname()[1], flush=True)
    while True:
        c, _ = s.accept()
        threading.Thread(target=handler, args=(c,), daemon=True).start()


def tls(name, cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    seen = {}
    ctx.sni_callback = lambda sock, sni, _ctx: seen.__setitem__(id(sock), sni)

    def handle(c):
        try:
            with ctx.wrap_socket(c, server_side=True) as t:
                line = t.makefile("rb").readline().decode().strip()
                t.sendall(("%s saw SNI %s: %s\n" % (name, seen.get(id(t)), line)).encode())
        except Exception as e:  # a refused handshake is a test outcome, not a crash
            print("tls error", e, file=sys.stderr, flush=True)
    serve(handle)


def read_exact(c, n):
    b = b""
    while len(b) < n:
        more = c.recv(n - len(b))
        if not more:
            raise EOFError
        b += more
    return b


def proxy():
    sig = b"\r\n\r\n\x00\r\nQUIT\n"

    def handle(c):
        with c:
            try:
                first = read_exact(c, 12)
                if first == sig:
                    ver_cmd, fam, length = struct.unpack("!BBH", read_exact(c, 4))
                    body = read_exact(c, length)
                    assert ver_cmd == 0x21 and fam == 0x11, (ver_cmd, fam)
                    src, dst, sport, dport = struct.unpack("!4s4sHH", body[:12])
                    msg = "src=%s:%d dst=%s:%d v=2" % (socket.inet_ntoa(src), sport, socket.inet_ntoa(dst), dport)
                elif first.startswith(b"PROXY "):
                    line = first
                    while not line.endswith(b"\r\n"):
                        line += read_exact(c, 1)
                    _, fam, src, dst, sport, dport = line.decode().strip().split(" ")
                    msg = "src=%s:%s dst=%s:%s v=1" % (src, sport, dst, dport)
                else:
                    msg = "bad header"
                rest = c.recv(100)
                c.sendall(("%s then %s\n" % (msg, rest.decode(errors="replace"))).encode())
            except Exception as e:
                c.sendall(("bad header %r\n" % e).encode())
    serve(handle)


if __name__ == "__main__":
    if sys.argv[1] == "tls":
        tls(*sys.argv[2:5])
    else:
        proxy()
