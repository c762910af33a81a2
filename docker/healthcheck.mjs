// Docker HEALTHCHECK for both roles of the one image: the api serves GET /healthz on PORT, the worker on
// WORKER_HEALTH_PORT. The check cannot know which role the container runs, so it asks PORT first and then
// WORKER_HEALTH_PORT, and passes when either answers 200. It uses node itself: slim images have no curl.
// An empty variable counts as unset, as in src/config/app-config.ts.
const ports = [...new Set([process.env.PORT || '3000', process.env.WORKER_HEALTH_PORT || '3001'])];

for (const port of ports) {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) });
    if (response.ok) process.exit(0);
  } catch {
    // Nothing listens on this port (the other role) or it did not answer in time: try the next one.
  }
}
process.stderr.write(`no /healthz answered 200 on port ${ports.join(' or ')}\n`);
process.exit(1);
