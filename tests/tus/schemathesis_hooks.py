"""Schemathesis hooks (SCHEMATHESIS_HOOKS): the bodies of tus parts are
plain bytes under the protocol's own media type, which schemathesis has no
generator for until it is told; and idempotency keys are kept apart."""

import uuid

from hypothesis import strategies as st

import schemathesis

schemathesis.openapi.media_type("application/offset+octet-stream", st.binary(max_size=4096))


@schemathesis.hook
def map_headers(ctx, headers):
    """A well-formed `Idempotency-Key` is made unique per request. A repeated
    key is answered with the job the first request made, without reading the
    repeat's body (tests/it/idempotency.rs checks that), so a schema-breaking
    body sent under a key drawn twice would be "accepted" by design.
    Malformed keys are kept, to be refused."""
    if headers and "Idempotency-Key" in headers:
        key = headers["Idempotency-Key"]
        if 0 < len(key) <= 256 and all(" " <= c <= "~" for c in key):
            headers["Idempotency-Key"] = uuid.uuid4().hex
    return headers
