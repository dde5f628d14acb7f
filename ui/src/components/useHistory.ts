/**
 * A batch's history, kept as it grows: each refresh asks only for the entries after the last
 * one seen, so a batch with many thousands of reports costs one small request per change.
 */
import { useRef } from "react";
import { api, HISTORY_PAGE, type HistoryEntry } from "../api";
import { useLiveData, type Loaded } from "../hooks";

export function useHistory(id: string): Loaded<HistoryEntry[]> {
  const seen = useRef<{ id: string; entries: HistoryEntry[] }>({ id, entries: [] });
  return useLiveData(
    `history:${id}`,
    async () => {
      if (seen.current.id !== id) seen.current = { id, entries: [] };
      let entries = seen.current.entries;
      for (;;) {
        const page = await api.history(id, entries[entries.length - 1]?.seq ?? 0);
        entries = [...entries, ...page];
        if (page.length < HISTORY_PAGE) break;
      }
      seen.current = { id, entries };
      return entries;
    },
    (m) => m.batch_id === id,
  );
}
