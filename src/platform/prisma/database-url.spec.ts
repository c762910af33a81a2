import { databaseNameOf, isDatabaseUrl, withDatabase } from './database-url.js';

describe('DATABASE_URL', () => {
  it.each([
    ['postgresql://postgres:postgres@127.0.0.1:5432/job_downloads', 'job_downloads', 'postgresql://postgres:postgres@127.0.0.1:5432/postgres'],
    ['postgres://user:pw@/jobs?host=/cloudsql/project:region:instance', 'jobs', 'postgres://user:pw@/postgres?host=/cloudsql/project:region:instance'],
    ['postgresql:///jobs?host=/var/run/postgresql', 'jobs', 'postgresql:///postgres?host=/var/run/postgresql'],
    ['postgres://user@[::1]:5432/my%20db?sslmode=require', 'my db', 'postgres://user@[::1]:5432/postgres?sslmode=require'],
  ])('%s leads to database %s, and its server\'s maintenance database is %s', (url, database, maintenance) => {
    expect(isDatabaseUrl(url)).toBe(true);
    expect(databaseNameOf(url)).toBe(database);
    expect(withDatabase(url, 'postgres')).toBe(maintenance);
  });

  it.each(['postgresql://u:pa#ss@h/db', 'postgresql://u:p@h:99999/db', 'mysql://h/db', 'postgres'])('refuses %s', (url) => {
    expect(isDatabaseUrl(url)).toBe(false);
  });
});
