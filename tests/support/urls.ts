/** Where the test services are: the same PostgreSQL and Redis a developer runs, overridable by env. */
const base = new URL(process.env.TEST_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres");

export function dbUrl(name: string): string {
  const url = new URL(base.toString());
  url.pathname = `/${name}`;
  return url.toString();
}

export const adminUrl = () => dbUrl("postgres");
export const redisUrl = () => process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
