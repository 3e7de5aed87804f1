// The peer of bench/bench_fleet.py: a plain sequential pager over a product's devices written with
// particle-api-js (the library particle-cli ships), as a developer would write it: listDevices page by page
// (perPage 100, sorted by device id) until meta.total_pages, counting devices per Device OS version.
// Usage: node bench/fleet_pager.js API_URL TOKEN PRODUCT  -> one JSON line {seconds, requests, devices, histogram}
'use strict';
const path = require('path');
const Particle = require(path.join(__dirname, '..', 'tools', 'npm', 'node_modules', 'particle-api-js'));

async function main() {
  const [baseUrl, auth, product] = process.argv.slice(2);
  const api = new Particle({ baseUrl });
  const started = process.hrtime.bigint();
  const histogram = {};
  let page = 1;
  let pages = 1;
  let requests = 0;
  let devices = 0;
  do {
    const reply = await api.listDevices({ product, page, perPage: 100, sortAttr: 'deviceId', sortDir: 'asc', auth });
    requests += 1;
    for (const d of reply.body.devices) {
      const v = d.system_firmware_version || 'unknown';
      histogram[v] = (histogram[v] || 0) + 1;
      devices += 1;
    }
    pages = reply.body.meta.total_pages;
    page += 1;
  } while (page <= pages);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  process.stdout.write(JSON.stringify({ seconds, requests, devices, histogram }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`fleet_pager: ${err && err.message ? err.message : err}\n`);
  process.exit(1);
});
