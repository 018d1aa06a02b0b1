// Reads a waveform JSON file with the waveform-data package (npm) and
// prints what it makes of it, for tests/it/waveform.rs: its duration, its
// points, and the loudest peak of its first and of its last 40 %.
import { readFileSync } from "node:fs";
import WaveformData from "waveform-data";

const waveform = WaveformData.create(JSON.parse(readFileSync(process.argv[2], "utf8")));
const channel = waveform.channel(0);
const part = Math.floor(waveform.length * 0.4);
const loudest = (from, to) => {
  let peak = 0;
  for (let i = from; i < to; i++) {
    peak = Math.max(peak, Math.abs(channel.min_sample(i)), Math.abs(channel.max_sample(i)));
  }
  return peak;
};
console.log(JSON.stringify({
  duration: waveform.duration,
  length: waveform.length,
  channels: waveform.channels,
  bits: waveform.bits,
  first_part: loudest(0, part),
  last_part: loudest(waveform.length - part, waveform.length),
}));
