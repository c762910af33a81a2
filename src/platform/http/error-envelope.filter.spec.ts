import { BadRequestException, NotFoundException } from '@nestjs/common';
import { AppError, DependencyUnavailableError } from '../errors.js';
import { describeError } from './error-envelope.filter.js';

describe('describeError', () => {
  it('answers anything unexpected with 500 INTERNAL and none of its words', () => {
    const sut = describeError(new Error('relation "secret_table" does not exist at /srv/app.js:12'));
    expect(sut).toEqual({ status: 500, body: { error: { code: 'INTERNAL', message: 'an unexpected error occurred', details: [] } } });
  });

  it('keeps the code, message and details of our own errors', () => {
    const sut = describeError(new AppError('INVALID_PARAMETER', 'bad', [{ field: 'job_id', message: 'm' }]));
    expect(sut).toEqual({ status: 400, body: { error: { code: 'INVALID_PARAMETER', message: 'bad', details: [{ field: 'job_id', message: 'm' }] } } });
  });

  it('turns unreachable dependencies into 503 with Retry-After, whatever their driver says', () => {
    for (const error of [
      new DependencyUnavailableError('redis'),
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
      new Error('outer', { cause: Object.assign(new Error('inner'), { code: 'ETIMEDOUT' }) }),
      new Error("Stream isn't writeable and enableOfflineQueue options is false"),
    ]) {
      expect(describeError(error)).toMatchObject({ status: 503, body: { error: { code: 'SERVICE_UNAVAILABLE' } }, retryAfter: 5 });
    }
  });

  it('turns a missing table (migrations not applied) into 503, not 500', () => {
    for (const error of [Object.assign(new Error('relation "download_operations" does not exist'), { code: '42P01' }), Object.assign(new Error('The table does not exist'), { code: 'P2021' })]) {
      expect(describeError(error)).toMatchObject({ status: 503, body: { error: { code: 'SERVICE_UNAVAILABLE', message: 'the service is not ready: its database migrations are pending' } } });
    }
  });

  it("replaces the framework's wording for its own 4xx errors", () => {
    expect(describeError(new NotFoundException('Cannot GET /secret'))).toEqual({ status: 404, body: { error: { code: 'NOT_FOUND', message: 'no such resource', details: [] } } });
    expect(describeError(new BadRequestException('Unexpected token } in JSON'))).toMatchObject({ status: 400, body: { error: { code: 'INVALID_REQUEST', message: 'the request is malformed' } } });
    expect(describeError(Object.assign(new Error('request entity too large'), { status: 413 }))).toMatchObject({ status: 413, body: { error: { code: 'PAYLOAD_TOO_LARGE' } } });
  });
});
