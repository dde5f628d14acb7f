/** The progress that matters in the batch's state: staging while it stages, analysis otherwise. */
import type { Batch } from "../api";
import { plural } from "../format";
import { ProgressBar } from "./ProgressBar";

const STAGING_STATES = new Set(["STAGING", "STAGED", "FAILED_STAGING"]);

export function RunProgress({ batch }: { batch: Batch }) {
  const staging = batch.staging;
  if (staging && staging.total > 0 && (STAGING_STATES.has(batch.status) || batch.progress.total === 0)) {
    return <ProgressBar counts={staging} label="staging" />;
  }
  if (batch.progress.total > 0) return <ProgressBar counts={batch.progress} label="analysis" />;
  return <span className="muted">{plural(batch.document_count, "document")}, not staged</span>;
}
