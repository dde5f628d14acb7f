/**
 * One button per user action, enabled exactly by the batch's `allowed_actions` (the machine's
 * own answer). Destructive actions ask first. A refusal shows the server's reason; either way
 * the owner refreshes the batch, since a refusal means it changed under us.
 */
import { useState } from "react";
import { ACTIONS, api, asApiError, type Action, type Batch } from "../api";

/** Actions that throw work or results away. */
const CONFIRM: Partial<Record<Action, string>> = {
  cancel: "Cancel this batch? Pending work is dropped; finished results are kept.",
  reset: "Reset this batch? Its staging output and every result are deleted.",
  restage: "Restage this batch? The previous output is cleared.",
  rerun: "Rerun this batch? The previous results are deleted.",
  delete: "Delete this batch and everything of it?",
};

export function ActionButtons({ batch, onDone }: { batch: Batch; onDone: (action: Action) => void }) {
  const [busy, setBusy] = useState<Action | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function act(action: Action) {
    const question = CONFIRM[action];
    if (question && !window.confirm(`${question}\n\n${batch.name}`)) return;
    setBusy(action);
    setError(null);
    try {
      await api.act(batch.id, action);
    } catch (err) {
      setError(asApiError(err).message);
    } finally {
      setBusy(null);
      onDone(action);
    }
  }

  return (
    <div className="actions">
      <div className="action-buttons">
        {ACTIONS.map((action) => (
          <button
            key={action}
            type="button"
            className={`btn btn-small btn-${action}`}
            disabled={busy !== null || !batch.allowed_actions.includes(action)}
            onClick={() => void act(action)}
          >
            {action}
          </button>
        ))}
      </div>
      {error && (
        <div className="action-error" role="alert">
          {error}
          <button type="button" className="link-button" aria-label="Dismiss" onClick={() => setError(null)}>
            ×
          </button>
        </div>
      )}
    </div>
  );
}
