/** The audit trail, newest first: accepted transitions and every refused, ignored or conflicting request. */

/** Entries drawn at most; a big batch has one per task report, and the newest matter most. */
const SHOWN = 300;
import type { HistoryEntry } from "../api";
import { compactJson, formatTime } from "../format";

function hasContext(context: unknown): boolean {
  return typeof context === "object" && context !== null && Object.keys(context).length > 0;
}

export function HistoryTimeline({ entries }: { entries: HistoryEntry[] }) {
  if (!entries.length) return <p className="muted">No history yet.</p>;
  const hidden = Math.max(0, entries.length - SHOWN);
  return (
    <>
    <ol className="timeline" data-testid="history">
      {entries.slice(hidden).reverse().map((h) => (
        <li key={h.seq} className={`timeline-item entry-${h.outcome}`}>
          <div className="timeline-head">
            <span className="seq">#{h.seq}</span>
            <span className={`badge outcome outcome-${h.outcome}`}>{h.outcome.replace("_", " ")}</span>
            <span className="mono">{h.event_type}</span>
            <span className="muted small" data-testid="actor">
              by {h.source}
              {h.actor ? ` · key ${h.actor}` : ""}
            </span>
            <span className="muted small timeline-time">{formatTime(h.created_at)}</span>
          </div>
          <div className="timeline-body">
            <span className="mono small">
              {h.from || "∅"} → {h.to}
            </span>
            {h.reason && <span className="reason">{h.reason}</span>}
            {hasContext(h.context) && <span className="mono small muted">{compactJson(h.context)}</span>}
          </div>
        </li>
      ))}
    </ol>
    {hidden > 0 && <p className="muted small">{hidden} older entries are not shown.</p>}
    </>
  );
}
