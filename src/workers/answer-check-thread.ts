/** A checking thread of the answer checker (see `answer-check.ts`): one request at a time, each answered in turn. */
import { parentPort } from "node:worker_threads";
import { answerCheckRequest, type CheckRequest } from "./answer-check";

parentPort?.on("message", (request: CheckRequest) => {
  parentPort?.postMessage(answerCheckRequest(request));
});
parentPort?.postMessage({ ready: true });
