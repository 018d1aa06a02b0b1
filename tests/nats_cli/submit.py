"""Submits a job over NATS the way README's "Submitting over NATS" does with
the `nats` CLI, using the official Python client (nats-py) and sending the
same subjects, headers and payloads as the commands there. Each step names
the command it stands for.

Environment: NATS_URL, ANN_TOKEN and BOB_TOKEN (tokens of ann@example.com and
bob@example.com), VIDEO (a video file), OUT_DIR (where the audio goes).
Prints one JSON object with what it saw; exits non-zero on any failure.
"""

import asyncio
import json
import os
import sys

import nats

UPLOADS = "mediajet_uploads"
OUTPUTS = "mediajet_outputs"
JOBS = "mediajet_jobs"


def check(condition, message):
    if not condition:
        print(f"FAILED: {message}", file=sys.stderr)
        sys.exit(1)


async def request(nc, subject, body, headers=None):
    """`nats req SUBJECT BODY -H K:V ...`: the reply's JSON and headers."""
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    reply = await nc.request(subject, payload, timeout=10, headers=headers)
    return json.loads(reply.data), (reply.headers or {})


async def discover(nc, subject):
    """`nats micro ls` / `nats micro info`: every reply to a $SRV request."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc.publish(subject, b"", reply=inbox)
    replies = []
    try:
        while True:
            msg = await sub.next_msg(timeout=1)
            replies.append(json.loads(msg.data))
    except nats.errors.TimeoutError:
        pass
    await sub.unsubscribe()
    return replies


async def main():
    ann = "Bearer " + os.environ["ANN_TOKEN"]
    bob = "Bearer " + os.environ["BOB_TOKEN"]
    video = os.environ["VIDEO"]
    out_dir = os.environ["OUT_DIR"]
    nc = await nats.connect(os.environ["NATS_URL"])
    js = nc.jetstream()
    seen = {}

    # nats micro ls
    services = await discover(nc, "$SRV.INFO")
    ingest = [s for s in services if s.get("name") == "mediajet-ingest"]
    check(ingest, f"mediajet-ingest is not discoverable: {services}")
    subjects = sorted(e["subject"] for e in ingest[0]["endpoints"])
    check(subjects == ["mediajet.jobs.status", "mediajet.jobs.submit"], subjects)
    seen["service"] = {"name": ingest[0]["name"], "subjects": subjects}

    # nats object put mediajet_uploads clip.mp4 --name ann@example.com/clip.mp4
    uploads = await js.object_store(UPLOADS)
    with open(video, "rb") as f:
        await uploads.put("ann@example.com/clip.mp4", f.read())

    # nats req mediajet.jobs.submit '{"v":1,"object":"ann@example.com/clip.mp4","format":"opus"}' \
    #   -H "Authorization:Bearer $TOKEN" -H "Nats-Msg-Id:clip-1"
    submit = {"v": 1, "object": "ann@example.com/clip.mp4", "format": "opus"}
    headers = {"Authorization": ann, "Nats-Msg-Id": "clip-1"}
    reply, reply_headers = await request(nc, "mediajet.jobs.submit", submit, headers)
    check("Nats-Service-Error-Code" not in reply_headers, f"submit refused: {reply}")
    check(reply["v"] == 1 and reply["duplicate"] is False, reply)
    job_id = reply["job"]["id"]
    check(reply["job"]["state"] == "queued", reply)
    check(reply["job"]["format"] == "opus" and reply["job"]["filename"] == "clip.mp4", reply)
    seen["job_id"] = job_id

    # The same request again (a retry): the same job, no second one.
    again, _ = await request(nc, "mediajet.jobs.submit", submit, headers)
    check(again.get("duplicate") is True and again["job"]["id"] == job_id, again)

    # nats sub 'mediajet.events.job.<id>.>' (started now; it sees what follows)
    events = await nc.subscribe(f"mediajet.events.job.{job_id}.>")

    # nats kv watch mediajet_jobs <id>: until the job ends
    kv = await js.key_value(JOBS)
    watcher = await kv.watch(job_id)
    states = []
    final = None
    async def follow():
        nonlocal final
        async for entry in watcher:
            if entry is None or entry.value is None:
                continue
            job = json.loads(entry.value)
            if not states or states[-1] != job["state"]:
                states.append(job["state"])
            if job["state"] in ("completed", "failed", "canceled"):
                final = job
                return
    await asyncio.wait_for(follow(), timeout=60)
    await watcher.stop()
    check(final["state"] == "completed", f"the job ended {final}")
    seen["kv_states"] = states

    event_subjects = []
    try:
        while True:
            msg = await events.next_msg(timeout=2)
            event_subjects.append(msg.subject)
    except nats.errors.TimeoutError:
        pass
    check(f"mediajet.events.job.{job_id}.completed" in event_subjects, event_subjects)
    seen["events"] = event_subjects

    # nats req mediajet.jobs.status '{"v":1,"job_id":"<id>"}' -H "Authorization:Bearer $TOKEN"
    status, _ = await request(
        nc, "mediajet.jobs.status", {"v": 1, "job_id": job_id}, {"Authorization": ann}
    )
    check(status["job"]["state"] == "completed", status)
    check(status["job"]["output"]["filename"] == "clip.opus", status)

    # nats object get mediajet_outputs <id>.opus -O clip.opus
    outputs = await js.object_store(OUTPUTS)
    result = await outputs.get(f"{job_id}.opus")
    path = os.path.join(out_dir, "clip.opus")
    with open(path, "wb") as f:
        f.write(result.data)
    seen["output"] = path

    # The upload was consumed by its job.
    try:
        await uploads.get_info("ann@example.com/clip.mp4")
        check(False, "the upload is still there after its job ended")
    except nats.js.errors.ObjectNotFoundError:
        pass

    # Refusals: each is an error reply with a status header and a JSON code.
    with open(video, "rb") as f:
        await uploads.put("ann@example.com/second.mp4", f.read())
    refusals = [
        ("no token", "mediajet.jobs.submit",
         {"v": 1, "object": "ann@example.com/second.mp4"}, {}, "401", "unauthorized"),
        ("bad token", "mediajet.jobs.submit",
         {"v": 1, "object": "ann@example.com/second.mp4"}, {"Authorization": "Bearer nope"},
         "401", "unauthorized"),
        ("unknown field", "mediajet.jobs.submit",
         {"v": 1, "object": "ann@example.com/second.mp4", "fromat": "mp3"},
         {"Authorization": ann}, "400", "bad_request"),
        ("no version", "mediajet.jobs.submit",
         {"object": "ann@example.com/second.mp4"}, {"Authorization": ann}, "400", "bad_request"),
        ("future version", "mediajet.jobs.submit",
         {"v": 2, "object": "ann@example.com/second.mp4"}, {"Authorization": ann},
         "400", "bad_request"),
        ("not JSON", "mediajet.jobs.submit", b"clip.mp4", {"Authorization": ann},
         "400", "bad_request"),
        ("bad options", "mediajet.jobs.submit",
         {"v": 1, "object": "ann@example.com/second.mp4", "format": "flac", "bitrate": 128},
         {"Authorization": ann}, "400", "invalid_options"),
        ("bad loudness", "mediajet.jobs.submit",
         {"v": 1, "object": "ann@example.com/second.mp4", "loudness": {"integrated": 3}},
         {"Authorization": ann}, "400", "invalid_loudness"),
        ("bad start", "mediajet.jobs.submit",
         {"v": 1, "object": "ann@example.com/second.mp4", "start": "soon"},
         {"Authorization": ann}, "400", "invalid_start"),
        ("picture cover over NATS", "mediajet.jobs.submit",
         {"v": 1, "object": "ann@example.com/second.mp4", "cover": "ann@example.com/art.png"},
         {"Authorization": ann}, "400", "invalid_cover"),
        ("bad track", "mediajet.jobs.submit",
         {"v": 1, "object": "ann@example.com/second.mp4", "track": "B-side"},
         {"Authorization": ann}, "400", "invalid_track"),
        ("bad split", "mediajet.jobs.submit",
         {"v": 1, "object": "ann@example.com/second.mp4", "split": "silence"},
         {"Authorization": ann}, "400", "invalid_split"),
        ("unknown loudness preset", "mediajet.jobs.submit",
         {"v": 1, "object": "ann@example.com/second.mp4", "loudness": "loud"},
         {"Authorization": ann}, "400", "invalid_loudness"),
        ("fifty outputs", "mediajet.jobs.submit",
         {"v": 1, "object": "ann@example.com/second.mp4", "outputs": [{"format": "mp3"}] * 50},
         {"Authorization": ann}, "400", "invalid_outputs"),
        ("a bad option in one output", "mediajet.jobs.submit",
         {"v": 1, "object": "ann@example.com/second.mp4",
          "outputs": [{"format": "mp3"}, {"format": "flac", "vbr": 3}]},
         {"Authorization": ann}, "400", "invalid_vbr"),
        ("notify_url without a job secret", "mediajet.jobs.submit",
         {"v": 1, "object": "ann@example.com/second.mp4",
          "notify_url": "https://example.com/hooks/job"},
         {"Authorization": ann}, "400", "no_job_secret"),
        ("notify_url not http", "mediajet.jobs.submit",
         {"v": 1, "object": "ann@example.com/second.mp4", "notify_url": "file:///etc/passwd"},
         {"Authorization": ann}, "400", "invalid_notify_url"),
        ("bad format", "mediajet.jobs.submit",
         {"v": 1, "object": "ann@example.com/second.mp4", "format": "exe"},
         {"Authorization": ann}, "400", "unsupported_format"),
        ("someone else's upload", "mediajet.jobs.submit",
         {"v": 1, "object": "ann@example.com/second.mp4"}, {"Authorization": bob},
         "403", "forbidden"),
        ("missing upload", "mediajet.jobs.submit",
         {"v": 1, "object": "ann@example.com/nothing.mp4"}, {"Authorization": ann},
         "404", "no_such_upload"),
        ("someone else's job", "mediajet.jobs.status",
         {"v": 1, "job_id": job_id}, {"Authorization": bob}, "404", "not_found"),
    ]
    seen["refusals"] = {}
    for name, subject, body, headers, status_code, code in refusals:
        reply, reply_headers = await request(nc, subject, body, headers)
        got = (reply_headers.get("Nats-Service-Error-Code"), reply.get("error", {}).get("code"))
        check(got == (status_code, code), f"{name}: expected {status_code} {code}, got {got} {reply}")
        seen["refusals"][name] = f"{status_code} {code}"

    # A refused request does not use up its message id: corrected, it runs.
    fixed = {"v": 1, "object": "ann@example.com/second.mp4", "format": "flac",
             "loudness": {"integrated": -20, "true_peak": -2}, "channels": 1, "start": "0:00.25",
             "title": "Second take", "track": "2",
             # Two outputs: the FLAC the fields describe, and an mp3 of it.
             "outputs": [{}, {"format": "mp3", "bitrate": 96}]}
    bad = dict(fixed, bitrate=128)
    headers = {"Authorization": ann, "Nats-Msg-Id": "second-1"}
    reply, _ = await request(nc, "mediajet.jobs.submit", bad, headers)
    check(reply["error"]["code"] == "invalid_options", reply)
    reply, _ = await request(nc, "mediajet.jobs.submit", fixed, headers)
    check(reply.get("duplicate") is False and reply["job"]["format"] == "flac", reply)
    check(reply["job"]["loudness"]["integrated"] == -20 and reply["job"]["channels"] == 1, reply)
    check(reply["job"]["start"] == 0.25 and reply["job"]["title"] == "Second take", reply)
    seen["second_job_id"] = reply["job"]["id"]
    # The upload that was refused for Bob is Ann's and still converts.
    await nc.close()
    print(json.dumps(seen))


asyncio.run(main())
