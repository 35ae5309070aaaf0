// Consumes N messages from QUEUE_URL with bbc's sqs-consumer, doing the same
// trivial work as evilent's side (count the message). Prints the count after
// every message (the feeder keeps the queue shallow by it), then one JSON
// line: messages, seconds, requests (every SQS API call, counted in the SDK).
import { SQSClient } from "@aws-sdk/client-sqs";
import { Consumer } from "sqs-consumer";

const queueUrl = process.env.QUEUE_URL;
const expected = Number(process.env.MESSAGES);
const sqs = new SQSClient({
  endpoint: process.env.EVILENT_SQS_ENDPOINT,
  region: process.env.AWS_REGION || "us-east-1",
  credentials: { accessKeyId: "test", secretAccessKey: "test" },
});
let requests = 0;
sqs.middlewareStack.add((next) => async (args) => { requests += 1; return next(args); }, { step: "initialize" });

let processed = 0;
const started = process.hrtime.bigint();
const consumer = Consumer.create({
  queueUrl,
  sqs,
  batchSize: 10,
  waitTimeSeconds: 1,
  handleMessage: async (message) => {
    processed += 1;
    process.stdout.write(`${processed}\n`);
    if (processed === expected) {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      // Let the last delete go out before stopping.
      setTimeout(() => {
        consumer.stop();
        console.log(JSON.stringify({ messages: processed, seconds, requests }));
        process.exit(0);
      }, 50);
    }
    return message;
  },
});
consumer.on("error", (err) => { console.error(err.message); });
consumer.on("processing_error", (err) => { console.error(err.message); });
consumer.start();
