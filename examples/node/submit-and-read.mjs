// Submit articles to newsflow from Node.js and wait for their results. Needs only
// Redis and the `redis` npm package (v4 or v5):
//
//   npm install redis
//   REDIS_URL=$NEWSFLOW_REDIS_URL NEWSFLOW_PREFIX=newsflow node submit-and-read.mjs
//
// Prints one result per line (JSON) and exits once every article it sent has one.
// It can be run again and again: the same id with the same text is a no-op that
// writes no new results entry, so it waits on each id's record,
// <prefix>:result:<id>, which points at the results entry of the current result
// whether it came from this run or an earlier one (docs/result-format.md). An app
// that reads every result as it comes reads <prefix>:results with a consumer
// group of its own instead (`newsflow results --group G` shows how).
import { createClient } from 'redis';

const url = process.env.REDIS_URL ?? process.env.NEWSFLOW_REDIS_URL ?? 'redis://127.0.0.1:6379/0';
const prefix = process.env.NEWSFLOW_PREFIX ?? 'newsflow';
const timeoutMs = Number(process.env.TIMEOUT_MS ?? 60000);
const inbox = `${prefix}:inbox`;
const results = `${prefix}:results`;

const articles = [
  { id: 'node/1', text: '立法院今天三讀通過預算案，行政院長表示將儘速執行各項建設計畫。', title: '預算案三讀' },
  { id: 'node/2', text: '台積電宣布在高雄興建新廠，預計創造三千個工作機會。', meta: JSON.stringify({ desk: 'business' }) },
  { id: 'node/3', title: 'no text: this one comes back rejected' },
];

const client = createClient({ url });
await client.connect();

// What each id's record pointed at before: a rejection (no text) is written anew
// for each inbox entry, so for those the example waits for a new entry.
const before = new Map();
for (const article of articles) {
  before.set(article.id, await client.hGet(`${prefix}:result:${article.id}`, 'entry'));
}
for (const article of articles) {
  await client.xAdd(inbox, '*', article); // plain fields; meta is a JSON string
}

const waiting = new Set(articles.map((a) => a.id));
const deadline = Date.now() + timeoutMs;
while (waiting.size > 0 && Date.now() < deadline) {
  for (const id of [...waiting]) {
    const entry = await client.hGet(`${prefix}:result:${id}`, 'entry');
    const hasText = articles.find((a) => a.id === id).text !== undefined;
    if (!entry || (!hasText && entry === before.get(id))) continue;
    const [found] = await client.xRange(results, entry, entry);
    if (!found) continue; // trimmed meanwhile: the record is about to move on
    console.log(found.message.result); // the full result JSON
    waiting.delete(id);
  }
  if (waiting.size > 0) await new Promise((resolve) => setTimeout(resolve, 200));
}

await client.quit();
if (waiting.size > 0) {
  console.error(`no result yet for: ${[...waiting].join(', ')}`);
  process.exit(1);
}
