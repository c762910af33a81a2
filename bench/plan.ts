import 'reflect-metadata';
import { AppConfig } from '../src/platform/config/app-config.js';
import type { Job } from '../src/generated/prisma/client.js';
import { StorageRepository } from '../src/storage/storage.repository.js';
import type { PlannedEntry } from '../src/packaging/package-builder.js';
import { PackagingService } from '../src/packaging/packaging.service.js';
import type { DataSet } from './dataset.js';

/**
 * The entries of a data set, planned by the service's own PackagingService.planEntries (listing, sorting,
 * assignEntryNames, shouldStore), so that the bench packages exactly what a worker would. planEntries only
 * uses S3 and the configuration: those two are injected, as Nest would, by the constructor's parameter types
 * (decorator metadata), so the bench follows the constructor as it changes; other collaborators stay undefined.
 */
export async function planDataSet(storage: StorageRepository, config: AppConfig, dataSet: DataSet): Promise<PlannedEntry[]> {
  const parameterTypes = (Reflect.getMetadata('design:paramtypes', PackagingService) ?? []) as unknown[];
  const injected = parameterTypes.map((type) => (type === StorageRepository ? storage : type === AppConfig ? config : undefined));
  const service = new (PackagingService as unknown as new (...args: unknown[]) => PackagingService)(...injected);
  const job: Pick<Job, 'inputs' | 'outputs'> = { inputs: [dataSet.inputsUri], outputs: [dataSet.outputsUri] };
  // Element access reaches the private method with its real signature, type-checked.
  const entries = await service['planEntries'](job);
  const listed = entries.reduce((sum, entry) => sum + entry.size, 0);
  if (listed !== dataSet.bytes) throw new Error(`data set ${dataSet.label}: listed ${listed} bytes, expected ${dataSet.bytes}`);
  return entries;
}
