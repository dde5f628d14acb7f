/**
 * Who may do what. `viewer` reads its tenant's batches, documents, history, results, queue,
 * live stream and visualizer data; `operator` also creates batches and documents and takes
 * every action, in its tenant; `admin` does everything across tenants, manages keys and opens
 * the queue dashboard.
 */
import { z } from "zod";

export const ROLES = ["viewer", "operator", "admin"] as const;
export const roleSchema = z.enum(ROLES);
export type Role = z.infer<typeof roleSchema>;

/** Whether `role` may do what `needed` may. */
export const roleAtLeast = (role: Role, needed: Role): boolean => ROLES.indexOf(role) >= ROLES.indexOf(needed);

/** Who is asking: a key (or the admin key, or the local single user when authentication is off). */
export interface Principal {
  /** The key's id; `admin` for ADMIN_API_KEY, `local` when authentication is off. */
  keyId: string;
  name: string;
  role: Role;
  /** The tenant new batches go to; admins see every tenant whatever this says. */
  tenant: string;
}

/** What history records as the one who asked: `name (id)`, or null without a key. */
export const actorOf = (p: Principal): string | null => (p.keyId === "local" ? null : `${p.name} (${p.keyId})`);

/** The tenant a principal's reads are confined to, or undefined for every tenant. */
export const tenantScope = (p: Principal): string | undefined => (p.role === "admin" ? undefined : p.tenant);
