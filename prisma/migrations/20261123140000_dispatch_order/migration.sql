-- Dispatch picks the next pending units of a batch in document order. Without position in the
-- index (and on tasks, without a join to documents) every refill sorted all pending rows: O(N) per
-- unit, O(N²) per batch.

-- AlterTable
ALTER TABLE "tasks" ADD COLUMN "position" INTEGER;
UPDATE "tasks" t SET "position" = d."position" FROM "documents" d WHERE d."id" = t."document_id";
ALTER TABLE "tasks" ALTER COLUMN "position" SET NOT NULL;

-- DropIndex
DROP INDEX "tasks_batch_id_run_id_status_idx";
DROP INDEX "documents_batch_id_stage_run_id_stage_status_idx";

-- CreateIndex
CREATE INDEX "tasks_batch_id_run_id_status_position_idx" ON "tasks"("batch_id", "run_id", "status", "position");
CREATE INDEX "documents_batch_id_stage_run_id_stage_status_position_idx" ON "documents"("batch_id", "stage_run_id", "stage_status", "position");
