/** The provider batches of a batch-lane batch: what each carries and how far the provider says it is. */
import type { ProviderBatchView } from "../../../src/vocabulary";
import { formatTime } from "../format";

export function ProviderBatches({ batches }: { batches: ProviderBatchView[] }) {
  return (
    <div className="card" data-testid="provider-batches">
      <h2>Provider batches</h2>
      {batches.length === 0 ? (
        <p className="muted small">None yet: the run's tasks are sent as provider batches once it starts.</p>
      ) : (
        <table className="table">
          <thead>
            <tr>
              <th>Provider batch</th>
              <th>Run</th>
              <th>Status</th>
              <th>Answered</th>
              <th>Created</th>
              <th>Expires</th>
            </tr>
          </thead>
          <tbody>
            {batches.map((p) => (
              <tr key={p.id}>
                <td className="mono small" title={p.id}>
                  {p.provider} {p.provider_id ?? "(submitting)"}
                </td>
                <td>{p.run_id}</td>
                <td>
                  {p.status}
                  {p.provider_status && p.provider_status !== p.status ? ` (${p.provider_status})` : ""}
                  {p.errors?.length ? <div className="error-text small">{p.errors.join("; ")}</div> : null}
                </td>
                <td>
                  {p.request_counts ? `${p.request_counts.succeeded} of ${p.request_counts.total}` : `0 of ${p.tasks}`}
                  {p.request_counts?.failed ? `, ${p.request_counts.failed} failed` : ""}
                </td>
                <td>{formatTime(p.created_at)}</td>
                <td>{p.expires_at ? formatTime(p.expires_at) : ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
