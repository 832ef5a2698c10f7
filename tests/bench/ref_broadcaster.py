#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The reference for nexsrv's fan-out benchmark: the least a watch server must do. It holds
# HTTP streaming connections (POST /watch) and writes the body of a POST /trigger as one
# line to every one of them: no database, no authentication, no JSON. Prints "READY PORT".
#   ref_broadcaster.py [--port N]   (listens on 127.0.0.1 only)
import asyncio, resource, sys

streams = set()

async def handle(reader, writer):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await reader.readexactly(length)
        if head.startswith(b"POST /trigger"):
            line = b'{"type":"change","value":{"hostname":"%s"}}\n' % body.strip()
            chunk = b"%x\r\n%s\r\n" % (len(line), line)
            for w in list(streams):
                w.write(chunk)
            writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        line = b'{"kind":"device","type":"tail"}\n'
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json;stream=watch\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n" % (len(line), line))
        streams.add(writer)
        await reader.read()  # until the client goes away
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    streams.discard(writer)
    writer.close()

async def main():
    port = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[1] == "--port" else 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    print("READY", server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
