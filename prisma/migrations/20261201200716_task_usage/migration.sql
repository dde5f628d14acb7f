-- Per-task provider usage: requests, cached input tokens, cost and how the document was analysed.
ALTER TABLE "tasks" ADD COLUMN "requests" INTEGER,
ADD COLUMN "cached_input_tokens" INTEGER,
ADD COLUMN "cost_usd" DOUBLE PRECISION,
ADD COLUMN "strategy" TEXT;
