/** The batch's documents with their staging status and, when the results endpoint answers, each one's analysis result. */
import type { BatchDocument, Result } from "../api";
import { compactJson, usd } from "../format";

function ResultCell({ result }: { result: Result | undefined }) {
  if (!result) return <span className="muted">—</span>;
  return (
    <div className="result">
      <span className={`badge unit-${result.status}`}>{result.status}</span>
      {result.error && <div className="error-text small">{result.error}</div>}
      {result.output !== null && result.output !== undefined && (
        <details>
          <summary className="mono small">{compactJson(result.output, 80)}</summary>
          <pre className="json">{JSON.stringify(result.output, null, 2)}</pre>
        </details>
      )}
      {(result.input_tokens !== null || result.latency_ms !== null) && (
        <div className="muted small">
          {result.input_tokens ?? 0} in / {result.output_tokens ?? 0} out tokens
          {result.latency_ms !== null && ` · ${result.latency_ms} ms`}
          {result.attempts !== null && result.attempts > 1 && ` · ${result.attempts} attempts`}
          {result.cost_usd !== undefined && ` · ${usd(result.cost_usd)}`}
          {result.cached && " · cached"}
          {result.strategy === "map_reduce" && " · map-reduce"}
        </div>
      )}
    </div>
  );
}

export function DocumentsTable({ documents, results }: { documents: BatchDocument[]; results: Result[] | null }) {
  const byDocument = new Map((results ?? []).map((r) => [r.document_id, r]));
  return (
    <table className="table documents" data-testid="documents">
      <thead>
        <tr>
          <th>Document</th>
          <th>Type</th>
          <th>Staging</th>
          <th className="num">Tokens</th>
          <th className="num">Chunks</th>
          {results && <th>Result</th>}
        </tr>
      </thead>
      <tbody>
        {documents.map((d) => (
          <tr key={d.id}>
            <td>{d.name}</td>
            <td className="mono small">{d.mime_type}</td>
            <td>
              <span className={`badge unit-${d.stage_status}`}>{d.stage_status}</span>
              {d.stage_error && <div className="error-text small">{d.stage_error}</div>}
            </td>
            <td className="num">{d.token_count ?? "—"}</td>
            <td className="num">{d.chunk_count ?? "—"}</td>
            {results && (
              <td>
                <ResultCell result={byDocument.get(d.id)} />
              </td>
            )}
          </tr>
        ))}
      </tbody>
    </table>
  );
}
