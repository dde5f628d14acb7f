/**
 * Follows one batch until it settles: the live stream (`GET /api/events`) says when it
 * changed, and each change (or, should the stream drop, a poll every few seconds) reads the
 * batch again. `onChange` sees every new version; the promise resolves with the batch once
 * its status is one of `until`.
 */
import type { BatchView, Client } from "./client";

export const TERMINAL = ["COMPLETED", "FAILED", "CANCELLED", "FAILED_STAGING"] as const;

export interface WatchOptions {
  until: readonly string[];
  onChange?: (batch: BatchView) => void;
  /** Poll this often anyway, so a dropped stream only slows the view down. */
  pollMs?: number;
}

export async function watchBatch(client: Client, batchId: string, options: WatchOptions): Promise<BatchView> {
  const stop = new AbortController();
  let last = -1;
  let settled: BatchView | undefined;
  let wake: (() => void) | undefined;
  // Set by a change that arrives while the batch is being read, so that it is not missed.
  let dirty: boolean | undefined;
  const changed = () => {
    dirty = true;
    wake?.();
  };

  // The stream only wakes the loop below; its failures are not fatal (the poll carries on).
  const stream = (async () => {
    while (!stop.signal.aborted) {
      try {
        const res = await fetch(`${client.url}/api/events`, { headers: client.headers({ accept: "text/event-stream" }), signal: stop.signal });
        if (!res.ok || !res.body) throw new Error(`live stream answered ${res.status}`);
        const decoder = new TextDecoder();
        let buffer = "";
        for await (const chunk of res.body) {
          buffer += decoder.decode(chunk as Uint8Array, { stream: true });
          let end: number;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const message = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = message.split("\n").find((l) => l.startsWith("data:"));
            if (data?.includes(batchId)) changed();
          }
        }
      } catch {
        // Reconnect after a pause unless we are done.
      }
      if (!stop.signal.aborted) await new Promise((r) => setTimeout(r, 1000));
    }
  })();

  try {
    while (!settled) {
      dirty = false;
      const batch = (await client.get<{ batch: BatchView }>(`/api/batches/${batchId}`)).batch;
      if (batch.version !== last) {
        last = batch.version;
        options.onChange?.(batch);
      }
      if (options.until.includes(batch.status)) {
        settled = batch;
        break;
      }
      if (dirty) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, options.pollMs ?? 3000);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  } finally {
    stop.abort();
    await stream;
  }
  return settled;
}
