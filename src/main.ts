/**
 * One entry for every role: `node dist/main.js api`, `node dist/main.js worker`, and with no role the local
 * all-in-one (migrations, API, worker and, without S3_ENDPOINT, an embedded S3 store) that `npm start` runs.
 * A worker started without the worker's process settings first runs itself again with them, and so does the
 * all-in-one without the OpenSSL option its embedded S3 needs.
 */
import {
  exitWithLauncher,
  hasLegacyCiphers,
  hasWorkerSettings,
  isRelaunched,
  relaunchWithLegacyOpenSsl,
  relaunchWithWorkerSettings,
} from './platform/worker-process-settings.js';

const role = process.argv[2] ?? 'all';
if (role === 'worker' && !hasWorkerSettings(process.execArgv, process.env)) {
  relaunchWithWorkerSettings();
} else if (role === 'all' && !process.env.S3_ENDPOINT && !hasLegacyCiphers() && !isRelaunched()) {
  // The embedded S3 needs OpenSSL's legacy ciphers to list past 1,000 objects (see relaunchWithLegacyOpenSsl).
  relaunchWithLegacyOpenSsl();
} else {
  exitWithLauncher();
  const { start } = await import('./app/start.js');
  await start(role);
}
