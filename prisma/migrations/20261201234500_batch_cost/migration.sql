-- Cost of a batch: its usage and budget (projections of the snapshot), the estimate made when
-- staging finishes, each document's analysis plan and worst-case cost, and what a running task
-- holds of the budget.
ALTER TABLE "batches" ADD COLUMN "usage_requests" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN "usage_input_tokens" BIGINT NOT NULL DEFAULT 0,
ADD COLUMN "usage_cached_input_tokens" BIGINT NOT NULL DEFAULT 0,
ADD COLUMN "usage_output_tokens" BIGINT NOT NULL DEFAULT 0,
ADD COLUMN "usage_cost_usd" DOUBLE PRECISION NOT NULL DEFAULT 0,
ADD COLUMN "usage_unpriced" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN "budget_usd" DOUBLE PRECISION,
ADD COLUMN "reserved_usd" DOUBLE PRECISION NOT NULL DEFAULT 0,
ADD COLUMN "pause_reason" TEXT,
ADD COLUMN "estimate" JSONB;

ALTER TABLE "documents" ADD COLUMN "plan_strategy" TEXT,
ADD COLUMN "plan_requests" INTEGER,
ADD COLUMN "plan_input_tokens" INTEGER,
ADD COLUMN "plan_requests_max" INTEGER,
ADD COLUMN "plan_input_tokens_max" INTEGER,
ADD COLUMN "plan_output_tokens_max" INTEGER,
ADD COLUMN "cost_max_usd" DOUBLE PRECISION;

ALTER TABLE "tasks" ADD COLUMN "reserved_usd" DOUBLE PRECISION;
