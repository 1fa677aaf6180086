"""Schemathesis hooks for Tandem's OpenAPI document (loaded through SCHEMATHESIS_HOOKS by
server/tests/schemathesis.rs).

A tus PATCH carries raw bytes (`application/offset+octet-stream`), a media type Schemathesis
has no serializer for: the generated value is sent as its bytes, as a stock tus client
would send a chunk.
"""

import schemathesis


@schemathesis.serializer("application/offset+octet-stream")
def offset_octet_stream(ctx, value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if value is None:
        return b""
    return str(value).encode("utf-8")
