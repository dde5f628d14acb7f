/**
 * What a batch costs: the estimate made when its staging finished (shown before Run), what it has
 * spent so far beside its budget, why it paused, and a form to set the budget.
 */
import { useState, type FormEvent } from "react";
import { api, asApiError, type Batch } from "../api";
import { plural, tokens, usd } from "../format";

export function CostCard({ batch, onChange }: { batch: Batch; onChange: () => void }) {
  const e = batch.estimate;
  const u = batch.usage;
  const [budget, setBudget] = useState(batch.budget_usd === null ? "" : String(batch.budget_usd));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function save(ev: FormEvent) {
    ev.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api.setBudget(batch.id, budget.trim() === "" ? null : Number(budget));
      onChange();
    } catch (err) {
      setError(asApiError(err).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="card" data-testid="cost">
      <h2>Cost</h2>
      {e ? (
        <p className="small" data-testid="estimate">
          Estimate: at most <strong>{usd(e.cost_usd_max)}</strong> for {plural(e.documents, "document")} on {e.model} ·{" "}
          {plural(e.requests, "request")} ({tokens(e.input_tokens)} input tokens), up to {plural(e.requests_max, "request")} with re-asks
          {e.map_reduce_documents > 0 && <> · {plural(e.map_reduce_documents, "document")} map-reduce</>}
          {e.cached_documents > 0 && <> · {plural(e.cached_documents, "cached document")} free</>}
          {e.price_checked_at && <span className="muted"> · price checked {e.price_checked_at}</span>}
          {e.note && <span className="muted"> · {e.note}</span>}
        </p>
      ) : (
        <p className="small muted">The estimate is made when staging finishes.</p>
      )}
      <p className="small" data-testid="spent">
        Spent: <strong>{usd(u.cost_usd)}</strong>
        {batch.budget_usd !== null && <> of a {usd(batch.budget_usd)} budget</>} · {plural(u.requests, "request")}, {tokens(u.input_tokens)} input (
        {tokens(u.cached_input_tokens)} cached), {tokens(u.output_tokens)} output tokens
        {u.saved_usd > 0 && <> · saved {usd(u.saved_usd)} by the cache</>}
        {batch.reserved_usd > 0 && <span className="muted"> · {usd(batch.reserved_usd)} held by tasks in flight</span>}
      </p>
      {u.note && <p className="small muted">{u.note}</p>}
      {batch.pause_reason === "budget" && (
        <p className="small error-text" data-testid="pause-reason">
          Paused by its budget: raise it and resume to continue.
        </p>
      )}
      <form className="budget-form" onSubmit={(ev) => void save(ev)}>
        <label className="small">
          Budget (USD){" "}
          <input
            name="budget_usd"
            type="number"
            min={0}
            step="any"
            value={budget}
            onChange={(ev) => setBudget(ev.target.value)}
            placeholder="none"
            title="Most the batch may cost; empty for no budget"
          />
        </label>{" "}
        <button type="submit" className="btn btn-small" disabled={busy}>
          Set budget
        </button>
        {error && (
          <span className="error-text small" role="alert">
            {" "}
            {error}
          </span>
        )}
      </form>
    </div>
  );
}
