// Uploads VIDEO to BASE_URL with the official tus client (tus-js-client, in
// Node), aborts it at about 40 %, and finishes it from a new client
// instance given only the upload's URL, as an app that stored the URL
// would. Prints what happened as JSON: the URL, where the first instance
// stopped, the offset the second resumed from (the server's answer to its
// HEAD), and the job the finished upload became.
import { readFileSync } from 'node:fs';
import * as tus from 'tus-js-client';

const { BASE_URL, TOKEN, VIDEO } = process.env;
const data = readFileSync(VIDEO);
const common = {
  endpoint: `${BASE_URL}/v1/uploads`,
  headers: { Authorization: `Bearer ${TOKEN}` },
  metadata: { filename: 'lecture.avi', format: 'mp3' },
  // Parts that are no whole number of the server's chunks.
  chunkSize: 5_000_000,
  retryDelays: [],
};

function fail(error) {
  console.error(String(error));
  process.exit(1);
}

const url = await new Promise((resolve, reject) => {
  const upload = new tus.Upload(data, {
    ...common,
    onError: reject,
    onSuccess: () => reject(new Error('the upload finished before it could be aborted')),
    onProgress(sent, total) {
      if (sent >= total * 0.4) {
        upload.abort().then(() => resolve({ url: upload.url, abortedAt: sent }), reject);
      }
    },
  });
  upload.start();
}).catch(fail);

const resumed = await new Promise((resolve, reject) => {
  let resumedFrom = null;
  const upload = new tus.Upload(data, {
    ...common,
    uploadUrl: url.url,
    onAfterResponse(request, response) {
      if (request.getMethod() === 'HEAD' && resumedFrom === null) {
        resumedFrom = Number(response.getHeader('Upload-Offset'));
      }
    },
    onError: reject,
    onSuccess(payload) {
      resolve({ resumedFrom, jobId: payload.lastResponse.getHeader('Mediajet-Job-Id') });
    },
  });
  upload.start();
}).catch(fail);

console.log(JSON.stringify({ ...url, ...resumed, size: data.length }));
