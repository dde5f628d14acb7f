/** The live feed as React sees it, and data that refreshes itself on live messages. */
import { createContext, useCallback, useContext, useEffect, useRef, useState } from "react";
import { asApiError, type ApiError } from "./api";
import type { LiveFeed, LiveMessage, LiveStatus } from "./live";

export const LiveContext = createContext<LiveFeed | null>(null);

/** The app's one live feed. */
export function useLiveFeed(): LiveFeed {
  const feed = useContext(LiveContext);
  if (!feed) throw new Error("LiveContext is missing: render inside <LiveContext.Provider>");
  return feed;
}

export function useLiveStatus(): LiveStatus {
  const feed = useLiveFeed();
  const [status, setStatus] = useState(feed.status());
  useEffect(() => {
    const unsubscribe = feed.onStatus(setStatus);
    // The status may have changed between the first render and this subscription.
    setStatus(feed.status());
    return unsubscribe;
  }, [feed]);
  return status;
}

/** Calls `listener` for every live message and poll tick; the latest listener is used without resubscribing. */
export function useLive(listener: (message: LiveMessage | null) => void): void {
  const feed = useLiveFeed();
  const latest = useRef(listener);
  latest.current = listener;
  useEffect(() => feed.subscribe((m) => latest.current(m)), [feed]);
}

export interface Loaded<T> {
  data: T | undefined;
  error: ApiError | null;
  reload: () => Promise<void>;
}

/**
 * Loads `load()` now, again whenever `key` changes, and on every live message that
 * `concerns` (every poll tick too). A reload asked for while one is in flight runs once
 * after it, since the one in flight may have read the state from before the change.
 */
export function useLiveData<T>(key: string, load: () => Promise<T>, concerns: (m: LiveMessage) => boolean = () => true): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<ApiError | null>(null);
  const loading = useRef(false);
  const again = useRef(false);
  const loader = useRef(load);
  loader.current = load;

  const reload = useCallback(async () => {
    if (loading.current) {
      again.current = true;
      return;
    }
    loading.current = true;
    do {
      again.current = false;
      try {
        setData(await loader.current());
        setError(null);
      } catch (err) {
        setError(asApiError(err));
      }
    } while (again.current);
    loading.current = false;
  }, []);

  useEffect(() => {
    setData(undefined);
    setError(null);
    void reload();
  }, [key, reload]);
  useLive((m) => {
    if (m === null || concerns(m)) void reload();
  });
  return { data, error, reload };
}
