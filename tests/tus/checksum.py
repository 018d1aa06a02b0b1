"""Uploads a file with tuspy (the official Python tus client) with
checksums on every part, one part of which is sent with a checksum that
does not match its bytes, as a corrupted transfer would arrive. Prints, as
JSON, the status that part got, the offset the server kept, and the job the
finished upload became.

Usage: checksum.py BASE_URL TOKEN PATH
"""

import base64
import hashlib
import json
import sys

from tusclient import client
from tusclient.exceptions import TusUploadFailed
from tusclient.request import TusRequest

base, token, path = sys.argv[1:4]
tus = client.TusClient(f"{base}/v1/uploads", headers={"Authorization": f"Bearer {token}"})
uploader = tus.uploader(
    path,
    chunk_size=1 << 20,
    metadata={"filename": "talk.avi", "format": "opus"},
    upload_checksum=True,
)
uploader.upload_chunk()
first = uploader.offset

honest = TusRequest.add_checksum


def corrupted(request, chunk):
    """The checksum of other bytes than those sent."""
    honest(request, chunk)
    digest = hashlib.sha1(chunk[:-1] + bytes([chunk[-1] ^ 0xFF])).digest()
    request._request_headers["upload-checksum"] = "sha1 " + base64.b64encode(digest).decode()


TusRequest.add_checksum = corrupted
refused = None
try:
    uploader.upload_chunk()
except TusUploadFailed as error:
    refused = error.status_code
TusRequest.add_checksum = honest

kept = uploader.get_offset()
uploader.offset = kept
uploader.upload()
print(json.dumps({
    "first": first,
    "refused": refused,
    "kept": kept,
    "url": uploader.url,
    "job": uploader.request.response_headers.get("mediajet-job-id"),
}))
