import 'reflect-metadata';
import { Controller, Get, HttpCode, Put } from '@nestjs/common';
import type { Server } from 'node:http';
import { createApp } from '../src/app/app.factory.js';
import { AppModule } from '../src/app/app.module.js';
import { loadConfig } from '../src/platform/config/app-config.js';

/**
 * Child-process entry: the real API (createApp('api', config), configured from the environment like
 * `node dist/main.js api`) plus one bare route in the same Nest application, the ceiling that PUT figures are
 * compared with: same process, same Express and Nest stack, no database, no Redis, no signing.
 */
@Controller('bench')
class BareController {
  @Put('bare')
  @HttpCode(200)
  put() {
    return { ok: true };
  }

  @Get('bare')
  get() {
    return { ok: true };
  }
}

// createApp builds AppModule.forRole(role, config); the bench adds its controller to that module here, so the
// application itself is the production one. (A static method of a class is writable, unlike an ES import.)
const forRole = AppModule.forRole.bind(AppModule);
AppModule.forRole = async (role, config) => {
  const module = await forRole(role, config);
  return { ...module, controllers: [...(module.controllers ?? []), BareController] };
};

const app = await createApp('api', loadConfig(process.env));
await app.listen(0, '127.0.0.1');
const address = (app.getHttpServer() as Server).address();
process.send!({ port: typeof address === 'object' && address ? address.port : 0 });
// The bench stops its children with a disconnect and then SIGTERM; both close the application, so a process
// started with BENCH_CHILD_EXEC_ARGV="--cpu-prof" exits normally and writes its profile.
let closing = false;
function close(): void {
  if (closing) return;
  closing = true;
  const force = setTimeout(() => process.exit(1), 10_000);
  app.close().finally(() => {
    clearTimeout(force);
    process.exit(0);
  });
}
process.once('disconnect', close);
process.once('SIGTERM', close);
