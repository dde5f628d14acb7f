-- The result cache: copies of successful answers by tenant, analysis fingerprint and document;
-- which tasks took their answer from it, and what that spared each batch.
ALTER TABLE "batches" ADD COLUMN "saved_usd" DOUBLE PRECISION NOT NULL DEFAULT 0;

ALTER TABLE "tasks" ADD COLUMN "cached" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN "saved_usd" DOUBLE PRECISION;

CREATE TABLE "result_cache" (
    "tenant" TEXT NOT NULL,
    "fingerprint" TEXT NOT NULL,
    "text_sha256" TEXT NOT NULL,
    "document_name" TEXT NOT NULL,
    "output" JSONB NOT NULL,
    "cost_usd" DOUBLE PRECISION,
    "strategy" TEXT,
    "source_task_id" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "result_cache_pkey" PRIMARY KEY ("tenant","fingerprint","text_sha256","document_name")
);
