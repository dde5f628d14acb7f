/**
 * The create form: multipart POST /api/batches/save with `name`, `analysis` (JSON) and one
 * `files` part per document. The output schema is checked as JSON here; whether it is a valid
 * JSON Schema is the server's call, and its answer is shown as it is.
 */
import { useState, type FormEvent } from "react";
import { api, asApiError } from "../api";
import { navigate } from "../router";
import { DropZone } from "./DropZone";

const PROVIDERS = ["openai", "anthropic", "local"] as const;

/** The schema textarea's problem, or null when it is empty or a JSON object. */
function schemaProblem(text: string): string | null {
  if (!text.trim()) return null;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value) ? null : "The output schema must be a JSON object";
  } catch (err) {
    return `The output schema is not valid JSON: ${(err as Error).message}`;
  }
}

export function CreateBatch() {
  const [name, setName] = useState("");
  const [instructions, setInstructions] = useState("");
  const [schema, setSchema] = useState("");
  const [provider, setProvider] = useState("");
  const [model, setModel] = useState("");
  const [tolerance, setTolerance] = useState("");
  const [budget, setBudget] = useState("");
  const [mode, setMode] = useState("live");
  const [files, setFiles] = useState<File[]>([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const problem = schemaProblem(schema);

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (problem) return;
    const analysis: Record<string, unknown> = { instructions };
    if (schema.trim()) analysis.output_schema = JSON.parse(schema);
    if (provider) analysis.provider = provider;
    if (model.trim()) analysis.model = model.trim();
    if (tolerance.trim()) analysis.failure_tolerance = Number(tolerance);
    if (budget.trim()) analysis.budget_usd = Number(budget);
    if (mode === "batch") analysis.mode = "batch";
    const form = new FormData();
    form.append("name", name);
    form.append("analysis", JSON.stringify(analysis));
    for (const file of files) form.append("files", file, file.name);
    setBusy(true);
    setError(null);
    try {
      const batch = await api.create(form);
      navigate(`/batches/${batch.id}`);
    } catch (err) {
      setError(asApiError(err).message);
      setBusy(false);
    }
  }

  return (
    <section className="narrow">
      <h1>New batch</h1>
      <form className="form" onSubmit={(e) => void submit(e)}>
        <label>
          Name
          <input name="name" required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} placeholder="Q3 contracts" />
        </label>
        <label>
          Analysis instructions
          <textarea
            name="instructions"
            required
            rows={4}
            value={instructions}
            onChange={(e) => setInstructions(e.target.value)}
            placeholder="List the parties and the termination clause."
          />
        </label>
        <label>
          <span>
            Output JSON Schema <span className="muted">(optional)</span>
          </span>
          <textarea
            name="output_schema"
            rows={5}
            className={`mono${problem ? " invalid" : ""}`}
            value={schema}
            onChange={(e) => setSchema(e.target.value)}
            placeholder='{ "type": "object", "properties": { "parties": { "type": "array" } } }'
            aria-invalid={problem !== null}
          />
          {problem && <span className="field-error">{problem}</span>}
        </label>
        <div className="form-row">
          <label>
            Provider
            <select name="provider" value={provider} onChange={(e) => setProvider(e.target.value)}>
              <option value="">server default</option>
              {PROVIDERS.map((p) => (
                <option key={p} value={p}>
                  {p}
                </option>
              ))}
            </select>
          </label>
          <label>
            Model
            <input name="model" value={model} onChange={(e) => setModel(e.target.value)} placeholder="server default" />
          </label>
          <label>
            Lane
            <select name="mode" value={mode} onChange={(e) => setMode(e.target.value)} title="batch: the provider's batch API, half price, answers within 24 hours">
              <option value="live">live (one request per document)</option>
              <option value="batch">batch API (half price, within 24 h)</option>
            </select>
          </label>
          <label>
            Failure tolerance
            <input
              name="failure_tolerance"
              type="number"
              min={0}
              max={1}
              step={0.01}
              value={tolerance}
              onChange={(e) => setTolerance(e.target.value)}
              placeholder="0.1"
              title="Share of tasks (0–1) that may fail before the run fails"
            />
          </label>
          <label>
            Budget (USD)
            <input
              name="budget_usd"
              type="number"
              min={0}
              step="any"
              value={budget}
              onChange={(e) => setBudget(e.target.value)}
              placeholder="none"
              title="Most the batch may cost: it pauses itself before a request could pass it"
            />
          </label>
        </div>
        <div className="field">
          <span>Documents</span>
          <DropZone files={files} onChange={setFiles} />
        </div>
        {error && (
          <div className="form-error" role="alert">
            {error}
          </div>
        )}
        <div className="form-actions">
          <button type="submit" className="btn btn-primary" disabled={busy || problem !== null}>
            {busy ? "Creating…" : `Create batch${files.length ? ` with ${files.length} document${files.length === 1 ? "" : "s"}` : ""}`}
          </button>
        </div>
      </form>
    </section>
  );
}
