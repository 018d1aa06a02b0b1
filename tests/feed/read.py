"""Reads a podcast feed with feedparser and with podcastparser, not with
anything of mediajet's, and prints what each makes of it as one JSON object:

    read.py FILE URL  ->  {"feedparser": {"bozo", "title", "entries": [...]},
                           "podcastparser": {"title", "episodes": [...]}}

URL is the address the feed was fetched from (podcastparser resolves
relative links against it).
"""

import json
import sys

import feedparser
import podcastparser


def read(path, url):
    with open(path, "rb") as file:
        raw = file.read()
    parsed = feedparser.parse(raw)
    by_feedparser = {
        "bozo": bool(parsed.bozo),
        "bozo_exception": str(parsed.get("bozo_exception", "")),
        "version": parsed.version,
        "title": parsed.feed.get("title"),
        "entries": [{
            "title": entry.get("title"),
            "id": entry.get("id"),
            "published": entry.get("published"),
            "duration": entry.get("itunes_duration"),
            "image": entry.get("image", {}).get("href"),
            "enclosures": [{"href": e.get("href"), "length": e.get("length"),
                            "type": e.get("type")} for e in entry.get("enclosures", [])],
        } for entry in parsed.entries],
    }
    with open(path, "rb") as file:
        podcast = podcastparser.parse(url, file)
    by_podcastparser = {
        "title": podcast.get("title"),
        "episodes": [{
            "title": episode.get("title"),
            "guid": episode.get("guid"),
            "published": episode.get("published"),
            "total_time": episode.get("total_time"),
            "image": episode.get("episode_art_url"),
            "enclosures": [{"url": e.get("url"), "file_size": e.get("file_size"),
                            "mime_type": e.get("mime_type")} for e in episode.get("enclosures", [])],
        } for episode in podcast.get("episodes", [])],
    }
    return {"feedparser": by_feedparser, "podcastparser": by_podcastparser}


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(json.dumps(read(sys.argv[1], sys.argv[2])))
