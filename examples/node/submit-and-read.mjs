// Submit articles to newsflow from Node.js and read their results through a
// consumer group. Needs only Redis and the `redis` npm package (v4 or v5):
//
//   npm install redis
//   REDIS_URL=redis://localhost:6379/0 NEWSFLOW_PREFIX=newsflow node submit-and-read.mjs
//
// Prints one result per line (JSON) and exits once every article it sent has one.
import { createClient } from 'redis';

const url = process.env.REDIS_URL ?? 'redis://localhost:6379/0';
const prefix = process.env.NEWSFLOW_PREFIX ?? 'newsflow';
const group = process.env.GROUP ?? 'node-example';
const consumer = process.env.CONSUMER ?? 'node-1';
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

// The group must exist before the results it should see are written: create it
// at '$' (only what comes after), or at '0' to read everything still retained.
try {
  await client.xGroupCreate(results, group, '$', { MKSTREAM: true });
} catch (err) {
  if (!String(err.message).includes('BUSYGROUP')) throw err;
}

for (const article of articles) {
  await client.xAdd(inbox, '*', article); // plain fields; meta is a JSON string
}

const waiting = new Set(articles.map((a) => a.id));
const deadline = Date.now() + timeoutMs;
// '0' first: entries this consumer was given before a crash and never acked.
// Then '>': entries no consumer of the group has seen yet.
let cursor = '0';
while (waiting.size > 0 && Date.now() < deadline) {
  const reply = await client.xReadGroup(group, consumer, { key: results, id: cursor }, { COUNT: 100, BLOCK: 1000 });
  const messages = reply?.[0]?.messages ?? [];
  if (cursor === '0' && messages.length === 0) {
    cursor = '>';
    continue;
  }
  for (const { id, message } of messages) {
    if (message && waiting.delete(message.id)) {
      console.log(message.result); // the full result JSON
    }
    await client.xAck(results, group, id); // ack only once it is handled
  }
}

await client.quit();
if (waiting.size > 0) {
  console.error(`no result yet for: ${[...waiting].join(', ')}`);
  process.exit(1);
}
