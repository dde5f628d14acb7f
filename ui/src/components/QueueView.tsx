/** The batch queue: the running batches, then the waiting ones in order, each movable one place up or down. */
import { useState, type ReactNode } from "react";
import { api, asApiError, type Batch } from "../api";
import { useLiveData } from "../hooks";
import { Link } from "../router";
import { LoadError, Notice } from "./Notice";
import { RunProgress } from "./RunProgress";
import { StateBadge } from "./StateBadge";

function QueueRow({ batch, children }: { batch: Batch; children?: ReactNode }) {
  return (
    <tr data-batch-id={batch.id}>
      <td className="num">{batch.queue_position === 0 ? "▶" : `#${batch.queue_position ?? "?"}`}</td>
      <td>
        <Link to={`/batches/${batch.id}`} className="batch-name">
          {batch.name}
        </Link>
      </td>
      <td>
        <StateBadge status={batch.status} substate={batch.substate} />
      </td>
      <td className="progress-cell">
        <RunProgress batch={batch} />
      </td>
      <td>{children}</td>
    </tr>
  );
}

export function QueueView() {
  // Queue membership changes with any batch's state, so every message refreshes the queue.
  const queue = useLiveData("queue", api.queue);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function move(batch: Batch, position: number) {
    setBusy(true);
    setError(null);
    try {
      await api.reorder(batch.id, position);
    } catch (err) {
      setError(asApiError(err).message);
    } finally {
      setBusy(false);
      await queue.reload();
    }
  }

  const q = queue.data;
  return (
    <section>
      <div className="page-head">
        <h1>Queue</h1>
        {q && <span className="muted">{q.max_running_batches} running at most</span>}
      </div>
      {queue.error && <LoadError error={queue.error} />}
      {error && (
        <div className="form-error" role="alert">
          {error}
        </div>
      )}
      {!q && !queue.error && <Notice kind="info" title="Loading the queue…" />}
      {q && q.running.length === 0 && q.queued.length === 0 && (
        <Notice kind="empty" title="The queue is empty">
          Batches enter it when they are run.
        </Notice>
      )}
      {q && (q.running.length > 0 || q.queued.length > 0) && (
        <table className="table queue">
          <thead>
            <tr>
              <th className="num">Position</th>
              <th>Name</th>
              <th>State</th>
              <th>Progress</th>
              <th>Move</th>
            </tr>
          </thead>
          <tbody>
            {q.running.map((b) => (
              <QueueRow key={b.id} batch={b} />
            ))}
            {q.queued.map((b, i) => {
              const position = b.queue_position ?? i + 1;
              return (
              <QueueRow key={b.id} batch={b}>
                <div className="action-buttons">
                  <button type="button" className="btn btn-small" disabled={busy || i === 0} onClick={() => void move(b, position - 1)} aria-label={`Move ${b.name} up`}>
                    ↑ up
                  </button>
                  <button
                    type="button"
                    className="btn btn-small"
                    disabled={busy || i === q.queued.length - 1}
                    onClick={() => void move(b, position + 1)}
                    aria-label={`Move ${b.name} down`}
                  >
                    ↓ down
                  </button>
                </div>
              </QueueRow>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}
