"""Reads the tags (and attached pictures) of an audio file with mutagen, not
with anything of mediajet's, and prints them as one JSON object:

    tags.py FILE  ->  {"container", "id3_version", "tags": {title, artist,
                      album, date, track, comment, genre}, "pictures":
                      [{"mime", "bytes"}], "chapters": [...]}

Tag names are mediajet's; each container's own names are mapped to them:
ID3v2 frames for mp3, MP4 atoms for m4a, Vorbis comments for FLAC and Opus.
"""

import base64
import json
import sys

import mutagen
from mutagen.flac import FLAC, Picture
from mutagen.id3 import ID3
from mutagen.mp4 import MP4
from mutagen.oggopus import OggOpus

ID3_FRAMES = {"title": "TIT2", "artist": "TPE1", "album": "TALB", "date": "TDRC",
              "track": "TRCK", "genre": "TCON"}
MP4_ATOMS = {"title": "\xa9nam", "artist": "\xa9ART", "album": "\xa9alb", "date": "\xa9day",
             "comment": "\xa9cmt", "genre": "\xa9gen"}
VORBIS = {"title": ["title"], "artist": ["artist"], "album": ["album"], "date": ["date"],
          "track": ["tracknumber"], "comment": ["comment", "description"], "genre": ["genre"]}


def read(path):
    kind = mutagen.File(path)
    found = {"container": type(kind).__name__, "tags": {}, "pictures": []}
    if path.endswith(".mp3"):
        id3 = ID3(path)
        found["id3_version"] = ".".join(str(n) for n in id3.version)
        for name, frame in ID3_FRAMES.items():
            if frame in id3:
                found["tags"][name] = str(id3[frame].text[0])
        comments = id3.getall("COMM")
        if comments:
            found["tags"]["comment"] = str(comments[0].text[0])
        # Where ffmpeg 5.1's ID3 writer alone would put a comment.
        if "TXXX:comment" in id3:
            found["txxx_comment"] = str(id3["TXXX:comment"].text[0])
        for picture in id3.getall("APIC"):
            found["pictures"].append({"mime": picture.mime, "bytes": len(picture.data)})
        found["picture_data"] = [base64.b64encode(p.data).decode() for p in id3.getall("APIC")]
        found["chapters"] = [{"title": str(c.sub_frames["TIT2"].text[0]) if "TIT2" in c.sub_frames
                              else None, "start_ms": c.start_time, "end_ms": c.end_time}
                             for c in id3.getall("CHAP")]
    elif path.endswith(".m4a"):
        mp4 = MP4(path)
        for name, atom in MP4_ATOMS.items():
            if atom in mp4.tags:
                found["tags"][name] = str(mp4.tags[atom][0])
        if "trkn" in mp4.tags:
            number, total = mp4.tags["trkn"][0]
            found["tags"]["track"] = f"{number}/{total}" if total else str(number)
        for cover in mp4.tags.get("covr", []):
            mime = "image/png" if cover.imageformat == cover.FORMAT_PNG else "image/jpeg"
            found["pictures"].append({"mime": mime, "bytes": len(cover)})
        found["picture_data"] = [base64.b64encode(bytes(c)).decode()
                                 for c in mp4.tags.get("covr", [])]
        found["chapters"] = [{"title": c.title, "start_ms": round(c.start * 1000)}
                             for c in (mp4.chapters or [])]
    elif path.endswith(".flac") or path.endswith(".opus"):
        audio = FLAC(path) if path.endswith(".flac") else OggOpus(path)
        comments = {key.lower(): values for key, values in audio.tags.as_dict().items()}
        for name, keys in VORBIS.items():
            for key in keys:
                if key in comments:
                    found["tags"][name] = comments[key][0]
                    break
        pictures = list(getattr(audio, "pictures", []))
        for block in comments.get("metadata_block_picture", []):
            pictures.append(Picture(base64.b64decode(block)))
        for picture in pictures:
            found["pictures"].append({"mime": picture.mime, "bytes": len(picture.data)})
        found["picture_data"] = [base64.b64encode(p.data).decode() for p in pictures]
        found["chapters"] = sorted(
            {key: values[0] for key, values in comments.items() if key.startswith("chapter")}.items())
    return found


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(json.dumps(read(sys.argv[1])))
