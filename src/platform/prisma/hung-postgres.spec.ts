import net from 'node:net';
import { judgeFailedAttempt } from '../../packaging/attempt-policy.js';
import { loadConfig } from '../config/app-config.js';
import { isDependencyUnavailable } from '../errors.js';
import { PrismaService } from './prisma.service.js';

/**
 * A Postgres that takes connections and never answers them (a failover in progress, a network partition),
 * reached through the service's own Prisma client and pool. What a worker makes of such an error decides
 * whether a package already written to S3 is recorded a little later or its operation is failed.
 */
describe('a Postgres that accepts connections and never answers', () => {
  const sockets = new Set<net.Socket>();
  let server: net.Server;
  let prisma: PrismaService;

  beforeAll(async () => {
    server = net.createServer((socket) => void sockets.add(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    prisma = new PrismaService(loadConfig({ DATABASE_URL: `postgresql://postgres:postgres@127.0.0.1:${port}/job_downloads` }));
  });

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await prisma.onModuleDestroy();
    await new Promise((resolve) => server.close(resolve));
  });

  it('is an outage to a transaction as to a single statement, so the attempt is postponed rather than failed', async () => {
    const transaction: unknown = await prisma.$transaction(async (tx) => tx.downloadOperation.count()).catch((error: unknown) => error);
    const statement: unknown = await prisma.downloadOperation.count().catch((error: unknown) => error);

    expect(transaction).toMatchObject({ code: 'P2028' });
    expect(isDependencyUnavailable(transaction)).toBe(true);
    expect(isDependencyUnavailable(statement)).toBe(true);
    // The last attempt included: an outage spends no attempt and never fails the operation.
    expect(judgeFailedAttempt({ error: transaction, attemptsMade: 2, maxAttempts: 3 })).toBe('postpone');
  }, 30_000);
});
