/**
 * One batch: where it stands, its documents and their results, and its history. Everything
 * refreshes on live messages about this batch. Documents, results and history are read one
 * page at a time (a batch may hold 100,000 documents). The results endpoint may not exist on
 * an older server; then the page says so and shows documents without results.
 */
import { useState } from "react";
import { api, ApiError, HISTORY_PAGE as HISTORY_PAGE_SIZE, PAGE, resultsUrl, type Result } from "../api";
import { useLiveData } from "../hooks";
import { formatTime, plural } from "../format";
import { navigate } from "../router";
import { ActionButtons } from "./ActionButtons";
import { DocumentsTable } from "./DocumentsTable";
import { HistoryTimeline } from "./HistoryTimeline";
import { LoadError, Notice } from "./Notice";
import { ProgressBar } from "./ProgressBar";
import { ProviderBatches } from "./ProviderBatches";
import { StateBadge } from "./StateBadge";
import { CostCard } from "./CostCard";
import { Pager } from "./Pager";

/** `null` when the server has no results endpoint (404 for the route, not the batch). */
async function loadResults(id: string, after: number): Promise<Result[] | null> {
  try {
    return (await api.results(id, after)).results;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  }
}

export function BatchDetail({ id }: { id: string }) {
  const about = (m: { batch_id: string }) => m.batch_id === id;
  const batch = useLiveData(`batch:${id}`, () => api.getBatch(id), about);
  // Where each page of documents starts: the last one is the page shown.
  const [starts, setStarts] = useState<number[]>([-1]);
  const after = starts[starts.length - 1]!;
  const documents = useLiveData(`documents:${id}:${after}`, () => api.documents(id, after), about);
  const results = useLiveData(`results:${id}:${after}`, () => loadResults(id, after), about);
  // History newest first; each older page starts before the oldest entry of the one before.
  const [befores, setBefores] = useState<(number | undefined)[]>([undefined]);
  const before = befores[befores.length - 1];
  const history = useLiveData(`history:${id}:${before ?? "latest"}`, () => api.history(id, before), about);
  const b = batch.data;

  if (batch.error?.status === 404) {
    return <Notice kind="empty" title="This batch does not exist (any more)">It may have been deleted.</Notice>;
  }
  if (batch.error && !b) return <LoadError error={batch.error} />;
  if (!b) return <Notice kind="info" title="Loading batch…" />;

  const analysis = b.analysis ?? {};
  return (
    <section data-batch-id={b.id}>
      <div className="page-head">
        <div>
          <h1>{b.name}</h1>
          <div className="muted small">
            {b.id} · version {b.version} · run {b.run_id} · created {formatTime(b.created_at)} · updated {formatTime(b.updated_at)}
          </div>
        </div>
        <StateBadge status={b.status} substate={b.substate} />
      </div>
      {batch.error && <LoadError error={batch.error} />}

      <div className="cards">
        <div className="card">
          <h2>Progress</h2>
          {b.staging && b.staging.total > 0 && <ProgressBar counts={b.staging} label="staging" />}
          {b.progress.total > 0 && <ProgressBar counts={b.progress} label="analysis" />}
          {b.progress.total === 0 && !b.staging?.total && <p className="muted">{plural(b.document_count, "document")}, not staged yet.</p>}
          <p className="small">
            Queue: {b.queue_position === null ? "not in the queue" : b.queue_position === 0 ? "running" : `waiting at #${b.queue_position}`}
          </p>
          {b.last_error && <p className="error-text" data-testid="last-error">{b.last_error}</p>}
        </div>
        <CostCard batch={b} onChange={() => void batch.reload()} />
        <div className="card">
          <h2>Analysis</h2>
          <p className="instructions">{analysis.instructions}</p>
          <p className="small muted">
            provider {analysis.provider ?? "default"} · model {analysis.model ?? "default"} · {analysis.mode === "batch" ? "batch API lane" : "live lane"}
          </p>
        </div>
      </div>
      {b.provider_batches && <ProviderBatches batches={b.provider_batches} />}

      <div className="card">
        <h2>Actions</h2>
        <ActionButtons
          batch={b}
          onDone={(action) => {
            if (action === "delete") navigate("/");
            else void batch.reload();
          }}
        />
        <p className="small links">
          <a href={`/machine?batch=${encodeURIComponent(b.id)}`}>See this batch in the machine visualizer</a>
          {results.data && (
            <>
              {" · "}
              <a href={resultsUrl(b.id, "jsonl")} download>
                results as JSONL
              </a>
              {" · "}
              <a href={resultsUrl(b.id, "csv")} download>
                results as CSV
              </a>
            </>
          )}
        </p>
      </div>

      <div className="card">
        <h2>Documents</h2>
        {results.data === null && <p className="muted small">This server does not offer results yet; documents are shown without them.</p>}
        {documents.error && <LoadError error={documents.error} />}
        {documents.data && (
          <>
            <DocumentsTable documents={documents.data.documents} results={results.data ?? null} />
            <Pager
              testId="documents-pager"
              label={`documents ${(starts.length - 1) * PAGE + 1}–${(starts.length - 1) * PAGE + documents.data.documents.length} of ${b.document_count}`}
              previous={starts.length > 1 ? () => setStarts(starts.slice(0, -1)) : undefined}
              next={documents.data.next_after_position !== null ? () => setStarts([...starts, documents.data!.next_after_position!]) : undefined}
            />
          </>
        )}
      </div>

      <div className="card">
        <h2>History</h2>
        {history.error && <LoadError error={history.error} />}
        {history.data && (
          <>
            <HistoryTimeline entries={[...history.data].reverse()} />
            <Pager
              testId="history-pager"
              label={befores.length > 1 ? `older entries, page ${befores.length}` : "latest entries"}
              previous={befores.length > 1 ? () => setBefores(befores.slice(0, -1)) : undefined}
              previousLabel="Newer"
              next={history.data.length === HISTORY_PAGE_SIZE && history.data[history.data.length - 1]!.seq > 1 ? () => setBefores([...befores, history.data![history.data!.length - 1]!.seq]) : undefined}
              nextLabel="Older"
            />
          </>
        )}
      </div>
    </section>
  );
}
