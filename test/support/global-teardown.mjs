import { releaseRunResources } from './run-resources.mjs';

export default async function globalTeardown() {
  const resources = globalThis.__RUN_RESOURCES__;
  if (resources) await releaseRunResources(resources);
}
