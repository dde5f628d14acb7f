-- Reads that stay fast at 100,000 documents whether or not ANALYZE ran: a document's latest task
-- (results and exports probed it with a scan of every task, ~40 ms per document at 100k), and the
-- state-changing history entries the visualizer's path folds (it read every report of the batch).

-- CreateIndex
CREATE INDEX "tasks_document_id_run_id_idx" ON "tasks"("document_id", "run_id");
CREATE INDEX "history_path_idx" ON "history"("batch_id", "seq") WHERE (outcome = 'accepted' AND from_state <> to_state);
