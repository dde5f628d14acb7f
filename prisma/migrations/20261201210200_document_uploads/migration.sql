-- Uploads (zip archives, multipart pages) are spooled here and moved into "documents" by the
-- batch's writer in one statement, so a large upload lands whole or not at all without being
-- held in memory.

-- CreateTable
CREATE TABLE "document_uploads" (
    "upload_id" UUID NOT NULL,
    "position" INTEGER NOT NULL,
    "name" TEXT NOT NULL,
    "mime_type" TEXT NOT NULL,
    "content" BYTEA NOT NULL,
    "size_bytes" INTEGER NOT NULL,
    "sha256" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "document_uploads_pkey" PRIMARY KEY ("upload_id","position")
);
