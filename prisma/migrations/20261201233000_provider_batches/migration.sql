-- The provider batch lane: provider batches recorded by the store, and the task each carries.
ALTER TABLE "tasks" ADD COLUMN "provider_batch_id" UUID;

CREATE TABLE "provider_batches" (
    "id" UUID NOT NULL,
    "batch_id" UUID NOT NULL,
    "run_id" INTEGER NOT NULL,
    "provider" TEXT NOT NULL,
    "provider_id" TEXT,
    "status" TEXT NOT NULL,
    "provider_status" TEXT,
    "task_count" INTEGER NOT NULL DEFAULT 0,
    "request_counts" JSONB,
    "errors" JSONB,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3),
    "ended_at" TIMESTAMPTZ(3),
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "provider_batches_pkey" PRIMARY KEY ("id")
);

CREATE INDEX "tasks_unassigned_idx" ON "tasks"("batch_id", "run_id", "position") WHERE (status = 'running' AND provider_batch_id IS NULL);
CREATE INDEX "tasks_provider_batch_idx" ON "tasks"("provider_batch_id") WHERE (provider_batch_id IS NOT NULL);
CREATE INDEX "provider_batches_batch_id_run_id_created_at_idx" ON "provider_batches"("batch_id", "run_id", "created_at");
ALTER TABLE "provider_batches" ADD CONSTRAINT "provider_batches_batch_id_fkey" FOREIGN KEY ("batch_id") REFERENCES "batches"("id") ON DELETE CASCADE ON UPDATE CASCADE;
