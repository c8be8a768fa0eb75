// face-api.js AgeGenderNet as a training-time teacher (see tools/teacher_labels.py, which drives it).
// stdin: raw RGB uint8 frames of SIZE x SIZE x 3 (the tight face crop, already resized by the caller),
// stdout: one line per frame, in order: "p_female age". Runs on the WASM backend from the local .wasm
// files (no network). Install with `npm ci` in this folder (exact versions in package.json).
'use strict';
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');
const wasm = require('@tensorflow/tfjs-backend-wasm');
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');

const SIZE = 112;
const FRAME = SIZE * SIZE * 3;
const BATCH = Number(process.env.TEACHER_BATCH || 32);

async function main() {
  const wasmDir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
  wasm.setWasmPaths(wasmDir + path.sep, true);
  // Node's fetch cannot read local files: serve the package's own .wasm from disk (never the network)
  const platformFetch = tf.env().platform.fetch.bind(tf.env().platform);
  tf.env().platform.fetch = async (url, init) => (String(url).startsWith(wasmDir)
    ? new Response(fs.readFileSync(String(url)), { headers: { 'content-type': 'application/wasm' } })
    : platformFetch(url, init));
  await tf.setBackend('wasm');
  await tf.ready();
  const modelDir = path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'model');
  await faceapi.nets.ageGenderNet.loadFromDisk(modelDir);
  process.stderr.write(`face-api ${faceapi.version} AgeGenderNet loaded on ${tf.getBackend()}\n`);

  let pending = Buffer.alloc(0);
  let chain = Promise.resolve();
  const run = (buffer, count) => {
    const out = tf.tidy(() => {
      const x = tf.tensor4d(new Uint8Array(buffer.buffer, buffer.byteOffset, count * FRAME), [count, SIZE, SIZE, 3], 'int32')
        .toFloat();
      const { age, gender } = faceapi.nets.ageGenderNet.forwardInput(x.shape[0] > 0 ? toNetInput(x) : x);
      return [age.dataSync(), gender.dataSync()];
    });
    const [ages, genders] = out;
    let text = '';
    for (let i = 0; i < count; i++) text += `${genders[2 * i + 1].toFixed(6)} ${ages[i].toFixed(4)}\n`;
    process.stdout.write(text);
  };
  const toNetInput = (x4d) => new faceapi.NetInput(tf.unstack(x4d));
  process.stdin.on('data', (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    const frames = Math.floor(pending.length / FRAME);
    for (let start = 0; start + BATCH <= frames; start += BATCH) {
      run(pending.subarray(start * FRAME, (start + BATCH) * FRAME), BATCH);
    }
    const done = Math.floor(frames / BATCH) * BATCH;
    pending = Buffer.from(pending.subarray(done * FRAME));
  });
  process.stdin.on('end', () => {
    const frames = Math.floor(pending.length / FRAME);
    if (frames) run(pending, frames);
    if (pending.length % FRAME) process.stderr.write(`ignored ${pending.length % FRAME} trailing bytes\n`);
  });
}

main().catch((error) => { process.stderr.write(`${error.stack || error}\n`); process.exit(1); });
