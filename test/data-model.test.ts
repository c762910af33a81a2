import { OperationRepository } from '../src/downloads/operation.repository.js';
import { createDatabaseOfItsOwn, Fixtures, testConfig, uniqueId, type OwnDatabase } from './support/harness.js';

/** Every model written and read back through the generated client: proof that the SQL and the schema agree. */
describe('the data model against the migrated database', () => {
  let database: OwnDatabase;
  let fixtures: Fixtures;

  // A database of its own: the scheduled sweeps of other files' workers would otherwise expire, delete or
  // dispatch the rows written here (a package object whose operation is gone, a ready operation, an event).
  beforeAll(async () => {
    database = await createDatabaseOfItsOwn('jdtest_model');
    fixtures = await Fixtures.create(testConfig({ DATABASE_URL: database.url }));
  });

  afterAll(async () => {
    await fixtures?.close();
    await database?.drop();
  });

  async function seedJob() {
    const organisation = await fixtures.prisma.organisation.create({ data: { name: uniqueId('org') } });
    const workflow = await fixtures.prisma.workflow.create({ data: { id: uniqueId('wf'), organisationId: organisation.id } });
    const job = await fixtures.prisma.job.create({
      data: {
        workflowId: workflow.id,
        id: uniqueId('job'),
        status: 'completed',
        inputs: ['s3://assets/in/'],
        outputs: ['s3://assets/out/', 's3://assets/extra/report.pdf'],
        finishedAt: new Date('2026-11-29T10:00:00Z'),
      },
    });
    return { organisation, workflow, job };
  }

  it('stores and reads back organisations, API keys, workflows and jobs with every field', async () => {
    const { organisation, workflow, job } = await seedJob();
    const key = await fixtures.prisma.apiKey.create({
      data: {
        organisationId: organisation.id,
        name: 'ci',
        prefix: 'jdk_abcdef',
        hash: 'a'.repeat(64),
        revokedAt: new Date('2026-11-29T11:00:00Z'),
        lastUsedAt: new Date('2026-11-29T10:30:00Z'),
      },
    });

    const read = await fixtures.prisma.organisation.findUniqueOrThrow({
      where: { id: organisation.id },
      include: { apiKeys: true, workflows: { include: { jobs: true } } },
    });

    expect(read.name).toBe(organisation.name);
    expect(read.createdAt).toBeInstanceOf(Date);
    expect(read.apiKeys).toEqual([key]);
    expect(read.apiKeys[0]).toMatchObject({ prefix: 'jdk_abcdef', hash: 'a'.repeat(64), name: 'ci' });
    expect(read.workflows).toHaveLength(1);
    expect(read.workflows[0].id).toBe(workflow.id);
    expect(read.workflows[0].jobs).toEqual([job]);
    expect(read.workflows[0].jobs[0]).toMatchObject({
      status: 'completed',
      inputs: ['s3://assets/in/'],
      outputs: ['s3://assets/out/', 's3://assets/extra/report.pdf'],
      finishedAt: new Date('2026-11-29T10:00:00Z'),
    });
  });

  it('stores and reads back a download operation with every field', async () => {
    const { organisation, job } = await seedJob();
    const key = await fixtures.prisma.apiKey.create({
      data: { organisationId: organisation.id, name: 'k', prefix: 'jdk_x', hash: uniqueId('h').padEnd(64, '0').slice(0, 64) },
    });
    // Relative to now: a ready operation whose expiry has passed is the retention sweep's to expire.
    const readyAt = new Date(Date.now() - 60_000);
    const expiresAt = new Date(readyAt.getTime() + 7 * 24 * 3600 * 1000);
    const written = await fixtures.prisma.downloadOperation.create({
      data: {
        workflowId: job.workflowId,
        jobId: job.id,
        status: 'ready',
        attempts: 2,
        bytesDone: 5_000_000_000n,
        bytesTotal: 5_000_000_000n,
        entryCount: 70_000,
        archiveKey: 'packages/a.zip',
        sizeBytes: 5_000_123_456n,
        sha256: 'b'.repeat(64),
        errorCode: 'STALLED',
        errorMessage: 'earlier attempt stalled',
        requestedBy: key.id,
        startedAt: new Date(readyAt.getTime() - 60_000),
        readyAt,
        failedAt: null,
        expiresAt,
      },
    });

    const read = await fixtures.prisma.downloadOperation.findUniqueOrThrow({ where: { id: written.id }, include: { apiKey: true, job: true } });

    expect(read.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(read).toMatchObject({
      status: 'ready',
      attempts: 2,
      bytesDone: 5_000_000_000n,
      sizeBytes: 5_000_123_456n,
      entryCount: 70_000,
      sha256: 'b'.repeat(64),
      expiresAt,
    });
    expect(read.apiKey?.id).toBe(key.id);
    expect(read.job.id).toBe(job.id);

    // The API's hot lookup reads it with pg directly: it must see exactly what Prisma sees, bigints included.
    const target = await new OperationRepository(fixtures.prisma).findDownloadTarget({ workflowId: job.workflowId, jobId: job.id, taskId: null });
    const { apiKey: _apiKey, job: _job, ...operation } = read;
    expect(target).toEqual({ organisationId: organisation.id, jobStatus: 'completed', changedAt: job.updatedAt, current: operation });
  });

  it('finds the owner and job status of a download target without a live operation, and nothing for an unknown workflow', async () => {
    const { organisation, workflow, job } = await seedJob();
    const operations = new OperationRepository(fixtures.prisma);

    expect(await operations.findDownloadTarget({ workflowId: workflow.id, jobId: job.id, taskId: null })).toEqual({ organisationId: organisation.id, jobStatus: 'completed', changedAt: job.updatedAt, current: null });
    expect(await operations.findDownloadTarget({ workflowId: workflow.id, jobId: 'no-such-job', taskId: null })).toEqual({ organisationId: organisation.id, jobStatus: null, changedAt: null, current: null });
    expect(await operations.findDownloadTarget({ workflowId: uniqueId('wf'), jobId: job.id, taskId: null })).toBeNull();
  });

  it('refuses a second live operation for one job, and allows a new one once the first has failed', async () => {
    const { job } = await seedJob();
    const target = { workflowId: job.workflowId, jobId: job.id };
    const first = await fixtures.prisma.downloadOperation.create({ data: target });

    await expect(fixtures.prisma.downloadOperation.create({ data: target })).rejects.toMatchObject({ code: 'P2002' });
    await expect(fixtures.prisma.downloadOperation.create({ data: { ...target, status: 'ready' } })).rejects.toMatchObject({ code: 'P2002' });

    await fixtures.prisma.downloadOperation.update({ where: { id: first.id }, data: { status: 'failed' } });
    const second = await fixtures.prisma.downloadOperation.create({ data: target });
    await fixtures.prisma.downloadOperation.create({ data: { ...target, status: 'expired' } });

    expect(second.id).not.toBe(first.id);
    expect(await fixtures.prisma.downloadOperation.count({ where: target })).toBe(3);
  });

  it('shows operators stuck and failed operations through their views', async () => {
    const { job } = await seedJob();
    const stuck = await fixtures.prisma.downloadOperation.create({
      data: { workflowId: job.workflowId, jobId: job.id, attempts: 1, updatedAt: new Date(Date.now() - 20 * 60_000) },
    });
    const other = await seedJob();
    const failed = await fixtures.prisma.downloadOperation.create({
      data: { workflowId: other.job.workflowId, jobId: other.job.id, status: 'failed', errorCode: 'SOURCE_MISSING', failedAt: new Date() },
    });

    const stuckRows = await fixtures.prisma.$queryRaw<Array<{ id: string }>>`SELECT id FROM stuck_operations WHERE job_id = ${job.id}`;
    const failedRows = await fixtures.prisma.$queryRaw<Array<{ id: string; error_code: string }>>`SELECT id, error_code FROM failed_operations WHERE job_id = ${other.job.id}`;

    expect(stuckRows).toEqual([{ id: stuck.id }]);
    expect(failedRows).toEqual([{ id: failed.id, error_code: 'SOURCE_MISSING' }]);
  });

  it('scopes job ids by workflow', async () => {
    const a = await seedJob();
    const b = await seedJob();
    const sameId = await fixtures.prisma.job.create({
      data: { workflowId: b.workflow.id, id: a.job.id, status: 'running', inputs: ['s3://x/i/'], outputs: ['s3://x/o/'] },
    });
    expect(sameId.id).toBe(a.job.id);
    expect(await fixtures.prisma.job.count({ where: { id: a.job.id } })).toBe(2);
  });

  it('stores and reads back the package objects no ready operation owns, keyed by bucket and key', async () => {
    const { job } = await seedJob();
    const operation = await fixtures.prisma.downloadOperation.create({ data: { workflowId: job.workflowId, jobId: job.id, attempts: 1 } });
    const key = `packages/${job.workflowId}/${job.id}/${operation.id}-1.zip`;
    const written = await fixtures.prisma.packageObject.create({ data: { bucket: 'test-packages', key, operationId: operation.id, attempt: 1, state: 'writing' } });

    const read = await fixtures.prisma.packageObject.findUniqueOrThrow({ where: { bucket_key: { bucket: 'test-packages', key } } });
    await fixtures.prisma.packageObject.update({ where: { bucket_key: { bucket: 'test-packages', key } }, data: { state: 'deleting' } });
    await fixtures.prisma.downloadOperation.delete({ where: { id: operation.id } });

    expect(read).toEqual(written);
    expect(read).toMatchObject({ operationId: operation.id, attempt: 1, state: 'writing' });
    // The object outlives its operation's row: its deletion must not be forgotten with it.
    expect(await fixtures.prisma.packageObject.findUniqueOrThrow({ where: { bucket_key: { bucket: 'test-packages', key } } })).toMatchObject({ state: 'deleting' });
  });

  it('stores webhook endpoints, writes an event to the outbox in the transaction that makes an operation ready, and stores deliveries', async () => {
    const { organisation, job } = await seedJob();
    const endpoint = await fixtures.prisma.webhookEndpoint.create({ data: { organisationId: organisation.id, url: 'https://hooks.example.com/a', secretCiphertext: 'v1:iv:tag:ct' } });
    const quiet = await seedJob();
    const operation = await fixtures.prisma.downloadOperation.create({ data: { workflowId: job.workflowId, jobId: job.id } });
    const unheard = await fixtures.prisma.downloadOperation.create({ data: { workflowId: quiet.job.workflowId, jobId: quiet.job.id } });

    await fixtures.prisma.downloadOperation.update({ where: { id: operation.id }, data: { status: 'ready', sizeBytes: 10n, archiveKey: 'packages/x.zip' } });
    await fixtures.prisma.downloadOperation.update({ where: { id: unheard.id }, data: { status: 'ready' } });
    await fixtures.prisma.downloadOperation.update({ where: { id: operation.id }, data: { bytesDone: 5n } });

    const events = await fixtures.prisma.webhookEvent.findMany({ where: { operationId: { in: [operation.id, unheard.id] } } });
    // One event, for the organisation with an endpoint, and only for the change of status.
    expect(events).toEqual([expect.objectContaining({ organisationId: organisation.id, type: 'download.ready', operationId: operation.id, dispatchedAt: null })]);
    expect(events[0].operation).toMatchObject({ id: operation.id, status: 'ready', size_bytes: 10, archive_key: 'packages/x.zip' });
    const delivery = await fixtures.prisma.webhookDelivery.create({
      data: { eventId: events[0].id, eventType: 'download.ready', organisationId: organisation.id, endpointId: endpoint.id, url: endpoint.url, attempt: 1, statusCode: 503, durationMs: 12, delivered: false, nextAttemptAt: new Date('2026-12-01T10:00:05Z') },
    });
    expect(await fixtures.prisma.webhookDelivery.findUniqueOrThrow({ where: { id: delivery.id } })).toEqual(delivery);
    await fixtures.prisma.webhookEndpoint.delete({ where: { id: endpoint.id } });
    expect(await fixtures.prisma.webhookDelivery.findUniqueOrThrow({ where: { id: delivery.id } })).toMatchObject({ endpointId: null });
  });
});
