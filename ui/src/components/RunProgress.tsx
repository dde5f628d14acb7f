/** The progress that matters in the batch's state: staging while it stages, analysis otherwise. */
import type { Batch } from "../api";
import { plural, usd } from "../format";
import { ProgressBar } from "./ProgressBar";

const STAGING_STATES = new Set(["STAGING", "STAGED", "FAILED_STAGING"]);

export function RunProgress({ batch }: { batch: Batch }) {
  const staging = batch.staging;
  if (staging && staging.total > 0 && (STAGING_STATES.has(batch.status) || batch.progress.total === 0)) {
    return (
      <>
        <ProgressBar counts={staging} label="staging" />
        {batch.estimate && (
          <div className="small muted" data-testid="estimate">
            at most {usd(batch.estimate.cost_usd_max)} to run
          </div>
        )}
      </>
    );
  }
  if (batch.progress.total > 0) {
    return (
      <>
        <ProgressBar counts={batch.progress} label="analysis" />
        <Spend batch={batch} />
      </>
    );
  }
  return <span className="muted">{plural(batch.document_count, "document")}, not staged</span>;
}

/** Running cost beside the progress: spent, of the budget when there is one, or the estimate's most. */
function Spend({ batch }: { batch: Batch }) {
  const of = batch.budget_usd !== null ? ` of ${usd(batch.budget_usd)} budget` : batch.estimate?.cost_usd_max != null ? ` (at most ${usd(batch.estimate.cost_usd_max)})` : "";
  return (
    <div className="small muted" data-testid="spend">
      {usd(batch.usage?.cost_usd)} spent{of}
      {batch.pause_reason === "budget" && <span className="error-text"> · paused by budget</span>}
    </div>
  );
}
