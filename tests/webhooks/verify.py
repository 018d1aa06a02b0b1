"""Verifies the requests a receiver recorded with the official Standard
Webhooks library and with Svix's, not with anything of mediajet's:

    verify.py RECORD_FILE SECRET  ->  [{"standardwebhooks": bool, "svix": bool,
                                        "id": ..., "payload": ...}, ...]
"""

import json
import sys

import standardwebhooks
import svix.webhooks


def check(verify, body, headers):
    try:
        verify(body, headers)
        return True
    except Exception:
        return False


def main(record, secret):
    results = []
    standard = standardwebhooks.Webhook(secret)
    by_svix = svix.webhooks.Webhook(secret)
    with open(record) as lines:
        for line in lines:
            request = json.loads(line)
            headers, body = request["headers"], request["body"]
            results.append({
                "standardwebhooks": check(standard.verify, body, headers),
                "svix": check(by_svix.verify, body, headers),
                "id": headers.get("webhook-id"),
                "payload": json.loads(body) if body else None,
                "at": request["at"],
                "path": request["path"],
            })
    return results


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
