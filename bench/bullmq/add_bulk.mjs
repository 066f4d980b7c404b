// BullMQ's producer beside the coordinator's enqueue_many (bench/throughput.py runs it).
//
//   node bench/bullmq/add_bulk.mjs <redis url> <jobs> [chunk]
//
// Adds <jobs> no-op jobs ({n}) to a BullMQ queue with Queue.addBulk, <chunk> (1,000)
// per call, one call after the other, and prints {"jobs", "seconds", "rate"} as JSON.
// The job list is built before the clock starts, as the Python side builds its payloads.
import { Queue } from "bullmq";
import IORedis from "ioredis";

const [url, jobsArg, chunkArg] = process.argv.slice(2);
const count = Number(jobsArg);
const chunk = Number(chunkArg ?? 1000);
if (!url || !Number.isInteger(count) || count < 1 || !Number.isInteger(chunk) || chunk < 1) {
  console.error("usage: node add_bulk.mjs <redis url> <jobs> [chunk]");
  process.exit(2);
}
const { hostname, port, pathname } = new URL(url);
// BullMQ 6 takes a constructed client in an ES module; maxRetriesPerRequest: null as its docs ask.
const connection = new IORedis({
  host: hostname, port: Number(port || 6379), db: Number(pathname.slice(1) || 0),
  maxRetriesPerRequest: null,
});
const queue = new Queue("bench-bullmq", { connection });
await queue.waitUntilReady();

const jobs = (n) => Array.from({ length: n }, (_, i) => ({ name: "bench-noop", data: { n: i } }));
await queue.addBulk(jobs(100)); // warm up: the connection and BullMQ's Lua scripts
await queue.obliterate({ force: true });

const all = jobs(count);
const began = process.hrtime.bigint();
for (let i = 0; i < all.length; i += chunk) {
  await queue.addBulk(all.slice(i, i + chunk));
}
const seconds = Number(process.hrtime.bigint() - began) / 1e9;
console.log(JSON.stringify({ jobs: count, seconds, rate: count / seconds }));
await queue.obliterate({ force: true });
await queue.close();
await connection.quit();
