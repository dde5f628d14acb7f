/**
 * Live updates: one EventSource on `/api/events` for the whole app. While the stream is down
 * (not deployed, server restarting, proxy cutting it) the feed polls instead, so every page
 * still refreshes within `pollMs`; listeners cannot tell the two apart except by status.
 */
import type { BatchChange } from "../../src/vocabulary";

/** One `event: batch` message of the stream: the server's NOTIFY payload. */
export type LiveMessage = BatchChange;

/** `null` asks for a refresh of everything shown: a poll tick, or a (re)connection that may have missed messages. */
export type LiveListener = (message: LiveMessage | null) => void;
export type LiveStatus = "connecting" | "live" | "polling";

export interface LiveFeed {
  subscribe(listener: LiveListener): () => void;
  onStatus(listener: (status: LiveStatus) => void): () => void;
  status(): LiveStatus;
  /** Opens the stream again now, e.g. after signing in (the stream authenticates by the session cookie). */
  reconnect(): void;
  close(): void;
}

export function createLiveFeed({ url = "/api/events", pollMs = 2000, retryMs = 10_000 } = {}): LiveFeed {
  const listeners = new Set<LiveListener>();
  const statusListeners = new Set<(status: LiveStatus) => void>();
  let status: LiveStatus = "connecting";
  let source: EventSource | null = null;
  let poll: ReturnType<typeof setInterval> | null = null;
  let retry: ReturnType<typeof setTimeout> | null = null;
  let closed = false;

  const emit = (message: LiveMessage | null) => {
    for (const listener of listeners) listener(message);
  };
  const setStatus = (next: LiveStatus) => {
    if (next === status) return;
    status = next;
    for (const listener of statusListeners) listener(next);
  };
  const startPolling = () => {
    poll ??= setInterval(() => emit(null), pollMs);
    setStatus("polling");
  };
  const stopPolling = () => {
    if (poll) clearInterval(poll);
    poll = null;
  };

  function connect() {
    retry = null;
    if (closed) return;
    const es = new EventSource(url);
    source = es;
    es.onopen = () => {
      stopPolling();
      setStatus("live");
      emit(null);
    };
    es.addEventListener("batch", (e) => {
      try {
        emit(JSON.parse((e as MessageEvent<string>).data) as LiveMessage);
      } catch {
        emit(null);
      }
    });
    es.onerror = () => {
      startPolling();
      // CONNECTING: the browser retries by itself. CLOSED (e.g. a 404): it gave up, so try again later.
      if (es.readyState === EventSource.CLOSED && !retry) retry = setTimeout(connect, retryMs);
    };
  }

  if (typeof EventSource === "undefined") startPolling();
  else connect();

  return {
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    onStatus(listener) {
      statusListeners.add(listener);
      return () => statusListeners.delete(listener);
    },
    status: () => status,
    reconnect() {
      if (closed || typeof EventSource === "undefined") return;
      source?.close();
      if (retry) clearTimeout(retry);
      setStatus("connecting");
      connect();
    },
    close() {
      closed = true;
      source?.close();
      stopPolling();
      if (retry) clearTimeout(retry);
    },
  };
}
