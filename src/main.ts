/**
 * One entry for every role: `node dist/main.js api`, `node dist/main.js worker`, and with no role the local
 * all-in-one (migrations, API, worker and, without S3_ENDPOINT, an embedded S3 store) that `npm start` runs.
 * A worker started without the worker's process settings first runs itself again with them.
 */
import { exitWithLauncher, hasWorkerSettings, relaunchWithWorkerSettings } from './platform/worker-process-settings.js';

const role = process.argv[2] ?? 'all';
if (role === 'worker' && !hasWorkerSettings(process.execArgv, process.env)) {
  relaunchWithWorkerSettings();
} else {
  exitWithLauncher();
  const { start } = await import('./app/start.js');
  await start(role);
}
