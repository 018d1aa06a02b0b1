"""Makes test sound at a given loudness, and measures audio files, with
pyloudnorm (ITU-R BS.1770-4) and ffmpeg's ebur128 filter, not with anything
of mediajet's.

    loudness.py make KIND LUFS OUT.wav   write 12 s of stereo sound whose
                                         integrated loudness is LUFS
    loudness.py measure FILE             print {"integrated", "true_peak",
                                         "channels", "sample_rate"} as JSON

KIND is `tones` (three tones swelling and fading: peaks 6 to 7 dB over the
loudness, a loudness range of about 1 LU) or `clicks` (the same with short
loud clicks every two seconds, whose peaks no plain gain can fit under a
-1 dBTP ceiling once the tones are at -16 LUFS).
"""

import json
import re
import subprocess
import sys
import tempfile

import numpy as np
import pyloudnorm
from scipy.io import wavfile

RATE = 48000
SECONDS = 12


def make(kind, lufs, out):
    t = np.arange(RATE * SECONDS) / RATE
    swell = 0.55 + 0.45 * np.sin(2 * np.pi * 0.3 * t)
    sound = (np.sin(2 * np.pi * 220 * t) + np.sin(2 * np.pi * 440 * t)
             + 0.5 * np.sin(2 * np.pi * 880 * t)) * swell
    if kind == "clicks":
        sound = sound + ((t % 2) < 0.004) * np.sin(2 * np.pi * 3000 * t) * 8
    elif kind != "tones":
        sys.exit(f"unknown kind {kind}")
    stereo = np.stack([sound, 0.8 * sound], axis=1)
    meter = pyloudnorm.Meter(RATE)
    stereo = pyloudnorm.normalize.loudness(stereo, meter.integrated_loudness(stereo), lufs)
    if np.abs(stereo).max() >= 1.0:
        sys.exit(f"{kind} at {lufs} LUFS would clip")
    wavfile.write(out, RATE, stereo.astype(np.float32))


def measure(path):
    with tempfile.NamedTemporaryFile(suffix=".wav") as decoded:
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", path, "-c:a", "pcm_f32le",
                        decoded.name], check=True)
        rate, data = wavfile.read(decoded.name)
    data = data.astype(np.float64)
    integrated = pyloudnorm.Meter(rate).integrated_loudness(data)
    meter = subprocess.run(["ffmpeg", "-hide_banner", "-nostats", "-i", path, "-af",
                            "ebur128=peak=true:framelog=verbose", "-f", "null", "-"],
                           capture_output=True, text=True, check=True).stderr
    peaks = re.findall(r"Peak:\s+(-?[\d.]+|-inf)", meter)
    print(json.dumps({
        "integrated": round(integrated, 2),
        "true_peak": float(peaks[-1]),
        "channels": 1 if data.ndim == 1 else data.shape[1],
        "sample_rate": rate,
    }))


if __name__ == "__main__":
    if sys.argv[1:2] == ["make"] and len(sys.argv) == 5:
        make(sys.argv[2], float(sys.argv[3]), sys.argv[4])
    elif sys.argv[1:2] == ["measure"] and len(sys.argv) == 3:
        measure(sys.argv[2])
    else:
        sys.exit(__doc__)
