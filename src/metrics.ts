/**
 * The Prometheus series every Tranche process exposes at `GET /metrics`, on a registry of its
 * own (so several apps in one test process do not collide). Labels are kept to small, fixed
 * sets — event types, outcomes, states, queue names, providers, models, HTTP statuses — and
 * never carry a batch, task or document id: a series per batch would grow without bound.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

/** Most distinct values a free-text label (the model a batch names) takes before the rest read `other`. */
const MAX_MODEL_LABELS = 50;

/** One HTTP call to an LLM provider, as the provider layer reports it. */
export interface ProviderRequestSample {
  provider: string;
  model: string;
  /** The HTTP status (`200`, `429`, …), or `timeout` / `connection` / `error` when there was no answer. */
  status: string;
  seconds: number;
}

/** What one analysis used (succeeded or failed), as the analysis worker reports it to the batch. */
export interface ProviderUsageSample {
  provider: string;
  model: string;
  inputTokens: number;
  /** Part of `inputTokens` served from the provider's prompt cache. */
  cachedInputTokens: number;
  outputTokens: number;
  /** null for a model without a known price (0 for the offline analyzer). */
  costUsd: number | null;
}

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "tranche_" });
  const registers = [registry];
  const models = new Set<string>();
  const modelLabel = (model: string) => {
    if (models.has(model)) return model;
    if (models.size >= MAX_MODEL_LABELS) return "other";
    models.add(model);
    return model;
  };

  const metrics = {
    registry,
    transitions: new Counter({
      name: "tranche_transitions_total",
      help: "Events submitted to batch machines, by event type and outcome (accepted, refused, ignored, version_conflict, not_found)",
      labelNames: ["event", "outcome"] as const,
      registers,
    }),
    groupSize: new Histogram({
      name: "tranche_store_group_size",
      help: "Submissions applied together in one store transaction",
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
      registers,
    }),
    transactionSeconds: new Histogram({
      name: "tranche_store_transaction_duration_seconds",
      help: "Time to apply one group of submissions to a batch, retries included",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    batches: new Gauge({
      name: "tranche_batches",
      help: "Batches by state (read from PostgreSQL at scrape time; every process reports the same totals)",
      labelNames: ["state"] as const,
      registers,
    }),
    jobs: new Gauge({
      name: "tranche_jobs",
      help: "BullMQ jobs by queue and job state (read from Redis at scrape time)",
      labelNames: ["queue", "state"] as const,
      registers,
    }),
    outboxPending: new Gauge({
      name: "tranche_outbox_pending",
      help: "Outbox rows (queue work committed with a transition) not yet dispatched to BullMQ",
      registers,
    }),
    outboxOldestAge: new Gauge({
      name: "tranche_outbox_oldest_age_seconds",
      help: "Age of the oldest undispatched outbox row (0 when none waits)",
      registers,
    }),
    reconcilerRepairs: new Counter({
      name: "tranche_reconciler_repairs_total",
      help: "Jobs the reconciler re-enqueued because Redis had lost them",
      registers,
    }),
    scrapeErrors: new Counter({
      name: "tranche_scrape_errors_total",
      help: "Scrape-time reads that failed, by source (postgres, redis); the gauges of that source keep their last value",
      labelNames: ["source"] as const,
      registers,
    }),
    providerRequests: new Counter({
      name: "tranche_provider_requests_total",
      help: "HTTP calls to LLM providers, by provider, model and status (429 = rate limited)",
      labelNames: ["provider", "model", "status"] as const,
      registers,
    }),
    providerLatency: new Histogram({
      name: "tranche_provider_request_duration_seconds",
      help: "Latency of one HTTP call to an LLM provider",
      labelNames: ["provider", "model"] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    }),
    providerTokens: new Counter({
      name: "tranche_provider_tokens_total",
      help: "Tokens used by analyses, by provider, model and kind (input, cached_input — part of input —, output)",
      labelNames: ["provider", "model", "kind"] as const,
      registers,
    }),
    providerCost: new Counter({
      name: "tranche_provider_cost_usd_total",
      help: "Cost of analyses in US dollars from the price table (models without a price add nothing)",
      labelNames: ["provider", "model"] as const,
      registers,
    }),

    /** Counts one HTTP call to a provider. */
    providerRequest(s: ProviderRequestSample) {
      const model = modelLabel(s.model);
      metrics.providerRequests.inc({ provider: s.provider, model, status: s.status });
      metrics.providerLatency.observe({ provider: s.provider, model }, s.seconds);
    },
    /** Counts what one analysis used. */
    providerUsage(s: ProviderUsageSample) {
      const labels = { provider: s.provider, model: modelLabel(s.model) };
      metrics.providerTokens.inc({ ...labels, kind: "input" }, s.inputTokens);
      metrics.providerTokens.inc({ ...labels, kind: "cached_input" }, s.cachedInputTokens);
      metrics.providerTokens.inc({ ...labels, kind: "output" }, s.outputTokens);
      if (s.costUsd !== null) metrics.providerCost.inc(labels, s.costUsd);
    },
    /** The Prometheus text of every series, after refreshing the scrape-time gauges. */
    async render(): Promise<string> {
      await Promise.all([...sources].map((refresh) => refresh()));
      return registry.metrics();
    },
    /** Adds a refresh run before every scrape (must not throw: it counts its own failures). */
    onScrape(refresh: () => Promise<void>): () => void {
      sources.add(refresh);
      return () => sources.delete(refresh);
    },
  };
  const sources = new Set<() => Promise<void>>();
  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;
