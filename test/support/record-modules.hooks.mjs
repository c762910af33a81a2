import { appendFileSync } from 'node:fs';

// Module loader hook (see record-modules.mjs): it runs on the loader's thread, for every module imported
// through ESM, including the entry file of each CommonJS package that an ES module imports.
export async function load(url, context, nextLoad) {
  const loaded = await nextLoad(url, context);
  if (url.startsWith('file:') && process.env.RECORD_MODULES_TO) appendFileSync(process.env.RECORD_MODULES_TO, `${url}\n`);
  return loaded;
}
