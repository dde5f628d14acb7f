/** One batch in the table: what it is, where it stands, and what can be done with it now. */
import type { Batch } from "../api";
import { formatTime } from "../format";
import { Link } from "../router";
import { ActionButtons } from "./ActionButtons";
import { RunProgress } from "./RunProgress";
import { StateBadge } from "./StateBadge";

export function BatchRow({ batch, onRefresh }: { batch: Batch; onRefresh: (id: string) => void }) {
  return (
    <tr data-batch-id={batch.id} data-version={batch.version}>
      <td>
        <Link to={`/batches/${batch.id}`} className="batch-name">
          {batch.name}
        </Link>
        <div className="muted small">
          run {batch.run_id}
          {batch.tenant !== "default" && <span data-testid="tenant"> · {batch.tenant}</span>}
        </div>
      </td>
      <td>
        <StateBadge status={batch.status} substate={batch.substate} />
      </td>
      <td className="num" data-testid="queue-position">
        {batch.queue_position === null ? <span className="muted">—</span> : batch.queue_position === 0 ? "running" : `#${batch.queue_position}`}
      </td>
      <td className="progress-cell">
        <RunProgress batch={batch} />
      </td>
      <td className="small nowrap">{formatTime(batch.updated_at)}</td>
      <td className="small error-text" data-testid="last-error">
        {batch.last_error ?? ""}
      </td>
      <td>
        <ActionButtons batch={batch} onDone={() => onRefresh(batch.id)} />
      </td>
    </tr>
  );
}
