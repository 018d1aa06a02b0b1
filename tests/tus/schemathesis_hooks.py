"""Schemathesis hooks (SCHEMATHESIS_HOOKS): the bodies of tus parts are
plain bytes under the protocol's own media type, which schemathesis has no
generator for until it is told."""

from hypothesis import strategies as st

import schemathesis

schemathesis.openapi.media_type("application/offset+octet-stream", st.binary(max_size=4096))
