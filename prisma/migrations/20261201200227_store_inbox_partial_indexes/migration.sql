-- The set-based store: the document count is kept instead of counted, units remember how
-- often they were dispatched (their job ids carry it), partial indexes keep per-event queries
-- on pending rows whatever N is and whether ANALYZE ran, and the inbox holds worker reports
-- until one drainer per batch applies them.

-- AlterTable
ALTER TABLE "batches" ADD COLUMN "document_count" INTEGER NOT NULL DEFAULT 0;
UPDATE "batches" b SET "document_count" = (SELECT count(*) FROM "documents" d WHERE d."batch_id" = b."id");
ALTER TABLE "documents" ADD COLUMN "dispatches" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "tasks" ADD COLUMN "dispatches" INTEGER NOT NULL DEFAULT 0;

-- CreateTable
CREATE TABLE "inbox" (
    "id" BIGSERIAL NOT NULL,
    "batch_id" UUID NOT NULL,
    "unit_key" TEXT NOT NULL,
    "run_id" INTEGER NOT NULL,
    "kind" TEXT NOT NULL,
    "report" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "inbox_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "documents_pending_idx" ON "documents"("batch_id", "stage_run_id", "position") WHERE (stage_status = 'pending');
CREATE INDEX "tasks_pending_idx" ON "tasks"("batch_id", "run_id", "position") WHERE (status = 'pending');
CREATE INDEX "effects_pending_idx" ON "effects"("available_at", "id") WHERE (status = 'pending');
CREATE INDEX "inbox_batch_id_id_idx" ON "inbox"("batch_id", "id");
CREATE UNIQUE INDEX "inbox_batch_id_unit_key_run_id_kind_key" ON "inbox"("batch_id", "unit_key", "run_id", "kind");
