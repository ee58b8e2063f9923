"""A real gRPC health server (grpcio's own implementation) on 127.0.0.1:0.

Prints its port, then reads commands from stdin, one per line:
  "serving <service>" / "not_serving <service>"   set a service's status
  ("" as <service> is written "-": the server as a whole)
and answers "ok" after each, so the test knows the change is in place.
"""
import sys
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc


def main():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    print(port, flush=True)
    for line in sys.stdin:
        parts = line.split()
        if len(parts) != 2:
            continue
        status = {
            "serving": health_pb2.HealthCheckResponse.SERVING,
            "not_serving": health_pb2.HealthCheckResponse.NOT_SERVING,
        }.get(parts[0])
        if status is None:
            continue
        servicer.set("" if parts[1] == "-" else parts[1], status)
        print("ok", flush=True)
    server.stop(0)


if __name__ == "__main__":
    main()
