"""Request limits applied before FastAPI sees a request: body size (413, as JSON)."""

import json


class BodyLimit:
    """ASGI middleware answering 413 to a body over `max_bytes`: from its Content-Length header, or
    while reading a body sent without one (chunked), before the application parses anything."""

    def __init__(self, app, max_bytes):
        self.app = app
        self.max_bytes = int(max_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit():
                return await _json(send, 400, f"Content-Length {length.decode(errors='replace')!r} is not a number")
            if int(length) > self.max_bytes:
                return await _json(send, 413, self._message(int(length)))
            return await self.app(scope, receive, send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                return await _json(send, 413, self._message(size, at_least=True))
            more = message.get("more_body", False)
        body = b"".join(chunks)

        async def replay():
            nonlocal body
            if body is None:
                return await receive()
            message, body = {"type": "http.request", "body": body, "more_body": False}, None
            return message

        await self.app(scope, replay, send)

    def _message(self, size, at_least=False):
        return (f"request body of {'more than ' if at_least else ''}{size:,} bytes; the limit is "
                f"{self.max_bytes:,} (raise it with --max-request-bytes)")


async def _json(send, status, detail):
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
