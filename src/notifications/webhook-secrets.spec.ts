import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../platform/config/app-config.js';
import { ensureLocalWebhookKey, localKeyFile, WebhookSecrets } from './webhook-secrets.js';

describe('webhook secrets without WEBHOOK_SECRET_KEY', () => {
  let dataDir: string;
  const local = () => loadConfig({ DATA_DIR: dataDir });
  const aimedElsewhere = () => loadConfig({ DATA_DIR: dataDir, S3_ENDPOINT: 'https://s3.eu-west-1.amazonaws.com', S3_REGION: 'eu-west-1' });

  beforeEach(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'webhook-key-'));
  });

  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('are kept under the key file the local all-in-one generates, and read back by the CLI beside it', async () => {
    await ensureLocalWebhookKey(local());
    const secret = new WebhookSecrets(local()).generate();

    const stored = new WebhookSecrets(local()).encrypt(secret);

    expect(existsSync(localKeyFile(local()))).toBe(true);
    expect(new WebhookSecrets(local()).decrypt(stored)).toBe(secret);
  });

  it('are refused by a process aimed at another S3, even where an old key file lies in its DATA_DIR', async () => {
    // A folder where `npm start` once ran, and a CLI or an api pointed at production from it.
    await ensureLocalWebhookKey(local());
    const secrets = new WebhookSecrets(aimedElsewhere());

    expect(() => secrets.encrypt(secrets.generate())).toThrow(expect.objectContaining({ code: 'SERVICE_UNAVAILABLE' }));
  });

  it('get no key file from a process aimed at another S3', async () => {
    await ensureLocalWebhookKey(aimedElsewhere());

    expect(existsSync(localKeyFile(aimedElsewhere()))).toBe(false);
  });
});
