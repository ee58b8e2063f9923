"""A real WebSocket peer for the tests (the `websockets` library).

  ws.py server             echo server on 127.0.0.1:0; prints its port, runs
                           until stdin closes. A text message "bye" makes it
                           close with code 4000 and reason "server-bye".
  ws.py talk URL           one connection: a text echo, a 1 MiB binary echo
                           and the server's close; prints a JSON report.
  ws.py hold URL N SECS    N connections, each sending a message every 0.25 s
                           for SECS seconds and checking its echo; prints a
                           JSON report.
"""

import asyncio
import json
import os
import sys

import websockets


async def serve():
    async def echo(ws):
        try:
            async for msg in ws:
                if msg == "bye":
                    await ws.close(code=4000, reason="server-bye")
                    return
                await ws.send(msg)
        except websockets.ConnectionClosed:
            pass

    async with websockets.serve(echo, "127.0.0.1", 0, max_size=4 << 20) as server:
        port = server.sockets[0].getsockname()[1]
        print(port, flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


async def talk(url):
    report = {}
    async with websockets.connect(url, max_size=4 << 20, open_timeout=5) as ws:
        report["subprotocol_header"] = ws.response.headers.get("upgrade")
        await ws.send("hello")
        report["text"] = await asyncio.wait_for(ws.recv(), 5)
        blob = os.urandom(1 << 20)
        await ws.send(blob)
        back = await asyncio.wait_for(ws.recv(), 10)
        report["binary_ok"] = back == blob
        await ws.send("bye")
        try:
            await asyncio.wait_for(ws.recv(), 5)
        except websockets.ConnectionClosed as e:
            report["close_code"] = e.rcvd.code if e.rcvd else None
            report["close_reason"] = e.rcvd.reason if e.rcvd else None
    print(json.dumps(report), flush=True)


async def hold(url, n, secs):
    conns = [await websockets.connect(url, open_timeout=5) for _ in range(n)]
    print(json.dumps({"opened": len(conns)}), flush=True)
    echoes = 0
    errors = []
    alive = [True] * n
    loop = asyncio.get_running_loop()
    end = loop.time() + secs
    seq = 0
    while loop.time() < end:
        for i, ws in enumerate(conns):
            if not alive[i]:
                continue
            msg = f"{i}:{seq}"
            try:
                await ws.send(msg)
                back = await asyncio.wait_for(ws.recv(), 5)
                if back == msg:
                    echoes += 1
                else:
                    errors.append(f"conn {i}: sent {msg!r}, got {back!r}")
            except Exception as e:  # any failure is a dead tunnel
                alive[i] = False
                errors.append(f"conn {i}: {type(e).__name__}: {e}")
        seq += 1
        await asyncio.sleep(0.25)
    for ws in conns:
        await ws.close()
    print(json.dumps({"alive": sum(alive), "echoes": echoes, "errors": errors}), flush=True)


def main():
    mode = sys.argv[1]
    if mode == "server":
        asyncio.run(serve())
    elif mode == "talk":
        asyncio.run(talk(sys.argv[2]))
    elif mode == "hold":
        asyncio.run(hold(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
