/** Stacked bar of a run's units: succeeded, failed, in flight, pending, cancelled; the counts beside it. */
import type { Counts } from "../api";

const SEGMENTS = [
  ["succeeded", "succeeded"],
  ["failed", "failed"],
  ["running", "in flight"],
  ["pending", "pending"],
  ["cancelled", "cancelled"],
] as const;

export function ProgressBar({ counts, label }: { counts: Counts; label?: string }) {
  const total = Math.max(counts.total, 1);
  const done = counts.succeeded + counts.failed + counts.cancelled;
  return (
    <div className="progress" data-testid="progress">
      <div
        className="progress-track"
        role="progressbar"
        aria-valuemin={0}
        aria-valuemax={counts.total}
        aria-valuenow={done}
        aria-label={label ?? "progress"}
      >
        {SEGMENTS.map(([key]) =>
          counts[key] > 0 ? <span key={key} className={`seg seg-${key}`} style={{ width: `${(counts[key] / total) * 100}%` }} /> : null,
        )}
      </div>
      <div className="progress-counts">
        {label && <span className="progress-label">{label}</span>}
        {SEGMENTS.map(([key, name]) =>
          counts[key] > 0 || key !== "cancelled" ? (
            <span key={key} className={`count count-${key}`} data-count={key}>
              {counts[key]} {name}
            </span>
          ) : null,
        )}
        <span className="count count-total">of {counts.total}</span>
      </div>
    </div>
  );
}
