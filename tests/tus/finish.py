"""Finishes the upload at URL with tuspy from wherever the server says it
stands (its HEAD), as a client resuming after a lost connection does.
Prints, as JSON, the offset it resumed from and the job it became.

Usage: finish.py URL TOKEN PATH
"""

import json
import sys

from tusclient import client

url, token, path = sys.argv[1:4]
tus = client.TusClient(url, headers={"Authorization": f"Bearer {token}"})
uploader = tus.uploader(path, url=url, chunk_size=4 << 20)
resumed = uploader.offset
uploader.upload()
print(json.dumps({
    "resumed": resumed,
    "job": uploader.request.response_headers.get("mediajet-job-id"),
}))
