import { Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { AppConfig } from '../platform/config/app-config.js';
import { AppError } from '../platform/errors.js';
import { StorageRepository } from '../storage/storage.repository.js';
import { parseS3Uri } from '../storage/s3-uri.js';
import { ApiKeyService } from '../catalogue/api-key.service.js';
import { OperatorService } from './operator.service.js';

export interface DemoSeed {
  apiKey: string;
  workflowId: string;
  jobId: string;
  curl: string;
}

/** A small raster with a real little-endian TIFF header and incompressible pixels, like a GeoTIFF band. */
function sampleRaster(bytes: number): Buffer {
  const header = Buffer.from([0x49, 0x49, 0x2a, 0x00, 0x08, 0x00, 0x00, 0x00]);
  return Buffer.concat([header, randomBytes(bytes - header.length)]);
}

/** Seeds an organisation, a key and a finished job with sample assets, so a newcomer can try the API at once. */
@Injectable()
export class DemoService {
  constructor(
    private readonly operator: OperatorService,
    private readonly apiKeys: ApiKeyService,
    private readonly storage: StorageRepository,
    private readonly config: AppConfig,
  ) {}

  async seed(): Promise<DemoSeed> {
    // Refused before anything is created: the registration would be refused after the organisation and key.
    const bucketProblem = this.config.demoBucketProblem;
    if (bucketProblem) throw new AppError('INVALID_ARGUMENT', bucketProblem);
    const suffix = randomBytes(3).toString('hex');
    const workflowId = `demo-workflow-${suffix}`;
    const jobId = `demo-job-${suffix}`;
    // The files first, the organisation, key and job last: a seed that S3 refuses leaves no organisation behind,
    // which would keep the all-in-one from seeding (and printing a key) on its next start.
    const sources = this.operator.defaultSources(workflowId, jobId);
    const inputs = parseS3Uri(sources.inputs);
    const outputs = parseS3Uri(sources.outputs);
    await this.storage.ensureBucket(inputs.bucket);
    const files: Array<[typeof inputs, string, Buffer | string, string]> = [
      [inputs, 'scene/B04.tif', sampleRaster(256 * 1024), 'image/tiff'],
      [inputs, 'scene/B08.tif', sampleRaster(256 * 1024), 'image/tiff'],
      [inputs, 'parameters.json', JSON.stringify({ index: 'NDVI', bands: ['B04', 'B08'], cloud_mask: true }, null, 2), 'application/json'],
      [outputs, 'ndvi.tif', sampleRaster(512 * 1024), 'image/tiff'],
      [outputs, 'statistics.csv', 'band,min,max,mean\nndvi,-0.21,0.93,0.47\n', 'text/csv'],
      [outputs, 'footprint.geojson', JSON.stringify({ type: 'Feature', geometry: { type: 'Polygon', coordinates: [[[13.3, 52.5], [13.5, 52.5], [13.5, 52.6], [13.3, 52.6], [13.3, 52.5]]] }, properties: {} }), 'application/geo+json'],
    ];
    for (const [location, name, body, contentType] of files) {
      await this.storage.putObject(location.bucket, `${location.prefix}${name}`, typeof body === 'string' ? Buffer.from(body) : body, contentType);
    }
    const organisation = await this.operator.createOrganisation(`Demo ${suffix}`);
    const { key } = await this.apiKeys.create(organisation.id, 'demo');
    await this.operator.registerJob({ organisationId: organisation.id, workflowId, jobId });
    const url = `http://localhost:${this.config.PORT}/v0/workflows/${workflowId}/jobs/${jobId}/download`;
    const curl = `curl -sS -X PUT -H 'Authorization: Bearer ${key}' -H 'Prefer: wait=30' ${url}`;
    return { apiKey: key, workflowId, jobId, curl };
  }
}
