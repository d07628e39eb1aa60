// A small line protocol over stdin/stdout that lets the Rust tests drive Debian's headless
// Chromium through playwright-core: one JSON command per line in, one JSON answer per
// line out.
//
//   {"open": URL}                      load URL in the (single) page
//   {"eval": JS}                       evaluate the expression JS in the page; answer its value
//   {"wait": JS, "timeout": MS}        evaluate JS every 20 ms (across page reloads) until truthy
//   {"quit": true}                     close the browser and exit
//
// Answers: {"ok": true, "value": V} or {"ok": false, "error": "..."}.

import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-quic',
  ],
});
const page = await browser.newPage();
page.on('console', (msg) => process.stderr.write(`[page] ${msg.text()}\n`));

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(js, timeout) {
  const deadline = Date.now() + timeout;
  let last = null;
  while (Date.now() < deadline) {
    try {
      const value = await page.evaluate(js);
      if (value) return value;
      last = value;
    } catch (err) {
      // The page is navigating (a reload): try again in its new document.
      last = String(err.message || err).split('\n')[0];
    }
    await sleep(20);
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${js} (last: ${JSON.stringify(last)})`);
}

async function run(command) {
  if (command.open) {
    await page.goto(command.open, { waitUntil: 'load' });
    return null;
  }
  if (command.eval) return await page.evaluate(command.eval);
  if (command.wait) return await waitFor(command.wait, command.timeout || 10000);
  throw new Error(`unknown command ${JSON.stringify(command)}`);
}

const answer = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
answer({ ok: true, value: 'started' });

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const command = JSON.parse(line);
  if (command.quit) break;
  try {
    answer({ ok: true, value: (await run(command)) ?? null });
  } catch (err) {
    answer({ ok: false, error: String(err.message || err) });
  }
}
await browser.close();
