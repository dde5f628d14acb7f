-- Who may do what: API keys (only a hash of each), the tenant every batch belongs to, the key
-- named in each history entry a user made, and each tenant's last start for round-robin promotion.

-- AlterTable
ALTER TABLE "batches" ADD COLUMN "tenant" TEXT NOT NULL DEFAULT 'default';
ALTER TABLE "history" ADD COLUMN "actor" TEXT;

-- CreateTable
CREATE TABLE "api_keys" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "role" TEXT NOT NULL,
    "tenant" TEXT NOT NULL,
    "hash" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "revoked_at" TIMESTAMPTZ(3),

    CONSTRAINT "api_keys_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "tenant_turns" (
    "tenant" TEXT NOT NULL,
    "last_started_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "tenant_turns_pkey" PRIMARY KEY ("tenant")
);

-- CreateIndex
CREATE INDEX "batches_tenant_created_at_idx" ON "batches"("tenant", "created_at");
