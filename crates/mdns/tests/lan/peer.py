"""The other side of the mDNS tests, run inside a test's network namespace.

An independent DNS-SD implementation (python-zeroconf) and a packet counter.
Every mode prints JSON lines on stdout and ends when stdin closes (the test
closes it, or dies) or after its time limit.

  browse TYPE IP SECONDS          python-zeroconf browses TYPE on IP's
                                  interface: {"event": "added"|"removed", ...}
  register TYPE NAME IPS PORT K=V...
                                  python-zeroconf advertises NAME.TYPE at
                                  the comma-separated IPS (the first one is
                                  the interface), {"event": "registered"};
                                  unregisters (goodbye) on stdin EOF
  count IFACE SECONDS             counts the mDNS (UDP port 5353) packets seen
                                  on IFACE in either direction:
                                  {"mdns_packets": N}
"""

import json
import socket
import struct
import sys
import threading
import time


def emit(obj):
    print(json.dumps(obj), flush=True)


def stdin_closed_or(seconds):
    """Blocks until stdin reaches EOF or `seconds` pass."""
    done = threading.Event()

    def reader():
        sys.stdin.read()
        done.set()

    threading.Thread(target=reader, daemon=True).start()
    done.wait(seconds)


def browse(ty, ip, seconds):
    from zeroconf import IPVersion, ServiceBrowser, ServiceStateChange, Zeroconf

    zc = Zeroconf(interfaces=[ip], ip_version=IPVersion.V4Only)

    def on_change(zeroconf, service_type, name, state_change):
        if state_change is ServiceStateChange.Removed:
            emit({"event": "removed", "name": name})
            return
        info = zeroconf.get_service_info(service_type, name, timeout=3000)
        if info is None:
            emit({"event": "unresolved", "name": name})
            return
        props = {
            k.decode(): (v.decode() if v is not None else None)
            for k, v in info.properties.items()
        }
        emit(
            {
                "event": "added" if state_change is ServiceStateChange.Added else "updated",
                "name": name,
                "server": info.server,
                "addresses": info.parsed_addresses(),
                "port": info.port,
                "properties": props,
            }
        )

    ServiceBrowser(zc, ty, handlers=[on_change])
    emit({"event": "browsing"})
    stdin_closed_or(seconds)
    zc.close()


def register(ty, name, ips, port, props):
    from zeroconf import IPVersion, ServiceInfo, Zeroconf

    addrs = ips.split(",")
    zc = Zeroconf(interfaces=[addrs[0]], ip_version=IPVersion.V4Only)
    info = ServiceInfo(
        ty,
        f"{name}.{ty}",
        addresses=[socket.inet_aton(a) for a in addrs],
        port=int(port),
        properties=dict(p.split("=", 1) for p in props),
        server=f"{name}.local.",
    )
    zc.register_service(info)
    emit({"event": "registered"})
    stdin_closed_or(120)
    zc.unregister_service(info)
    zc.close()
    emit({"event": "unregistered"})


def count(iface, seconds):
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003))
    sock.bind((iface, 0))
    sock.settimeout(0.2)
    seen = 0
    stop = threading.Event()

    def watch():
        stdin_closed_or(seconds)
        stop.set()

    threading.Thread(target=watch, daemon=True).start()
    emit({"event": "counting"})
    while not stop.is_set():
        try:
            frame = sock.recv(65535)
        except socket.timeout:
            continue
        ethertype = struct.unpack("!H", frame[12:14])[0]
        if ethertype == 0x0800 and len(frame) >= 34 and frame[23] == 17:
            udp = 14 + (frame[14] & 0x0F) * 4
        elif ethertype == 0x86DD and len(frame) >= 62 and frame[20] == 17:
            udp = 54
        else:
            continue
        sport, dport = struct.unpack("!HH", frame[udp : udp + 4])
        if 5353 in (sport, dport):
            seen += 1
    emit({"mdns_packets": seen})


def main():
    mode = sys.argv[1]
    if mode == "browse":
        browse(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    elif mode == "register":
        register(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:])
    elif mode == "count":
        count(sys.argv[2], float(sys.argv[3]))
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
