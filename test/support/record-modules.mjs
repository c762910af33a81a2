// `node --import ./test/support/record-modules.mjs app.js` appends the URL of every module the process loads
// to the file named by RECORD_MODULES_TO, so that a test can see what a process carries.
import { register } from 'node:module';

register(new URL('./record-modules.hooks.mjs', import.meta.url));
