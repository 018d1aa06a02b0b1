"""Reads an email with Python's own `email` package, not with anything of
mediajet's, and prints it as one JSON object:

    read.py FILE  ->  {"headers": {name: value}, "text": ..., "html": ...,
                       "links": [every http(s) address in the text part]}

Content transfer encodings (quoted-printable, base64) are undone.
"""

import email
import email.policy
import json
import re
import sys


def read(path):
    with open(path, "rb") as file:
        message = email.message_from_binary_file(file, policy=email.policy.default)
    found = {"headers": {name: str(value) for name, value in message.items()},
             "content_type": message.get_content_type()}
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    found["text"] = text.get_content() if text is not None else None
    found["html"] = html.get_content() if html is not None else None
    found["links"] = re.findall(r"https?://\S+", found["text"] or "")
    return found


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(json.dumps(read(sys.argv[1])))
