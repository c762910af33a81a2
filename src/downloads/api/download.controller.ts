import { applyDecorators, Controller, Delete, Get, HttpCode, Param, Put, Req, Res, UseGuards } from '@nestjs/common';
import { ApiHeader, ApiOkResponse, ApiOperation, ApiResponse, ApiSecurity, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import type { RunRef } from '../operation.repository.js';
import { DownloadPathDto, TaskDownloadPathDto } from './dto/download-path.dto.js';
import { DownloadResponseDto } from './dto/download-response.dto.js';
import { ErrorEnvelopeDto } from '../../platform/http/error-envelope.dto.js';
import { preferredWaitSeconds } from './prefer.js';
import { API_KEY_SCHEME, ApiKeyGuard, type AuthenticatedRequest } from './guards/api-key.guard.js';
import { PathParamsGuard } from './guards/path-params.guard.js';
import { RateLimitGuard } from './guards/rate-limit.guard.js';
import { DownloadService, type DownloadAnswer } from './download.service.js';

const RETRY_AFTER_HEADER = { 'Retry-After': { description: 'seconds to wait before asking again', schema: { type: 'integer' } } };
const ERROR_RESPONSES: Array<[number, string]> = [
  [400, 'a path parameter is malformed (INVALID_PARAMETER; details name it)'],
  [401, 'no key, an unknown key or a revoked key (UNAUTHENTICATED)'],
  [403, "the key's organisation does not own the workflow (FORBIDDEN)"],
  [404, 'no such workflow, job, task or operation, or no live operation to cancel (NOT_FOUND)'],
  [409, 'the job run (on the task path: the task itself) has not finished (JOB_NOT_FINISHED; the message names the job or task)'],
  [429, "the key's rate limit is spent (RATE_LIMITED)"],
  [500, 'anything unexpected (INTERNAL)'],
  [503, 'Postgres, Redis or S3 is unreachable (SERVICE_UNAVAILABLE)'],
];
/** The answers besides 200. A GET never answers 409: it shows an unfinished job's operation (or 404). */
const ApiErrorResponses = ({ unfinished = true } = {}) =>
  applyDecorators(
    ...ERROR_RESPONSES.filter(([status]) => unfinished || status !== 409).map(([status, description]) =>
      ApiResponse({
        status,
        description,
        type: ErrorEnvelopeDto,
        headers: status === 429 || status === 503 ? RETRY_AFTER_HEADER : undefined,
      }),
    ),
  );

/** Fires when the client goes away before its answer is sent, so that a held request stops waiting. */
function disconnection(response: Response): AbortSignal {
  const controller = new AbortController();
  response.once('close', () => {
    if (!response.writableFinished) controller.abort();
  });
  return controller.signal;
}

const WAIT_HEADER = { name: 'Prefer', required: false, description: 'RFC 7240 `wait=N`: hold the answer up to N seconds (capped by configuration) until the package is ready' };

/**
 * The public endpoint, for a whole job run and for one of its tasks: the same behaviour, the same guards,
 * checked in the contract's order (path parameters, key, rate limit).
 */
@ApiTags('downloads')
@ApiSecurity(API_KEY_SCHEME)
@UseGuards(PathParamsGuard, ApiKeyGuard, RateLimitGuard)
@Controller('v0/workflows/:workflow_id/jobs/:job_id')
export class DownloadController {
  constructor(private readonly downloads: DownloadService) {}

  @Put('download')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Package every input and output asset of a job run into one ZIP and get a presigned URL for it',
    description:
      'Idempotent: while an operation is pending every PUT returns it; a ready package gets a freshly signed URL on every call; failed and expired operations are replaced by a new one (a permanent failure stands until the job changes or a cool-down passes).',
  })
  @ApiHeader(WAIT_HEADER)
  @ApiOkResponse({ type: DownloadResponseDto, headers: RETRY_AFTER_HEADER, description: 'the operation; Retry-After is set while pending' })
  @ApiErrorResponses()
  async request(
    @Param() params: DownloadPathDto,
    @Req() request: AuthenticatedRequest,
    @Res({ passthrough: true }) response: Response,
  ): Promise<DownloadResponseDto> {
    const answer = await this.downloads.request(request.caller!, jobOf(params), waitOf(request), disconnection(response));
    return this.send(answer, response);
  }

  @Get('download')
  @ApiOperation({ summary: 'The current operation of a job, without side effects (404 when there is none)' })
  @ApiOkResponse({ type: DownloadResponseDto, headers: RETRY_AFTER_HEADER })
  @ApiErrorResponses({ unfinished: false })
  async current(@Param() params: DownloadPathDto, @Req() request: AuthenticatedRequest, @Res({ passthrough: true }) response: Response): Promise<DownloadResponseDto> {
    return this.send(await this.downloads.current(request.caller!, jobOf(params)), response);
  }

  @Delete('download')
  @ApiOperation({
    summary: 'Cancel the live operation of a job',
    description: 'A pending build stops within seconds and leaves nothing in S3; a ready package is deleted at once (its URLs answer 404). 404 when there is no live operation; the next PUT starts a new one.',
  })
  @ApiOkResponse({ type: DownloadResponseDto, description: 'the operation, cancelled' })
  @ApiErrorResponses()
  async cancel(@Param() params: DownloadPathDto, @Req() request: AuthenticatedRequest, @Res({ passthrough: true }) response: Response): Promise<DownloadResponseDto> {
    return this.send(await this.downloads.cancel(request.caller!, jobOf(params)), response);
  }

  @Put('tasks/:task_id/download')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Package every input and output asset of one task of a job run into one ZIP and get a presigned URL for it',
    description: 'Behaves as the job endpoint does, for the assets of one task; the task must have finished (its job may still run).',
  })
  @ApiHeader(WAIT_HEADER)
  @ApiOkResponse({ type: DownloadResponseDto, headers: RETRY_AFTER_HEADER, description: 'the operation; Retry-After is set while pending' })
  @ApiErrorResponses()
  async requestTask(
    @Param() params: TaskDownloadPathDto,
    @Req() request: AuthenticatedRequest,
    @Res({ passthrough: true }) response: Response,
  ): Promise<DownloadResponseDto> {
    const answer = await this.downloads.request(request.caller!, taskOf(params), waitOf(request), disconnection(response));
    return this.send(answer, response);
  }

  @Get('tasks/:task_id/download')
  @ApiOperation({ summary: 'The current operation of a task, without side effects (404 when there is none)' })
  @ApiOkResponse({ type: DownloadResponseDto, headers: RETRY_AFTER_HEADER })
  @ApiErrorResponses({ unfinished: false })
  async currentTask(@Param() params: TaskDownloadPathDto, @Req() request: AuthenticatedRequest, @Res({ passthrough: true }) response: Response): Promise<DownloadResponseDto> {
    return this.send(await this.downloads.current(request.caller!, taskOf(params)), response);
  }

  @Delete('tasks/:task_id/download')
  @ApiOperation({ summary: 'Cancel the live operation of a task', description: 'As for a job.' })
  @ApiOkResponse({ type: DownloadResponseDto, description: 'the operation, cancelled' })
  @ApiErrorResponses()
  async cancelTask(@Param() params: TaskDownloadPathDto, @Req() request: AuthenticatedRequest, @Res({ passthrough: true }) response: Response): Promise<DownloadResponseDto> {
    return this.send(await this.downloads.cancel(request.caller!, taskOf(params)), response);
  }

  private send(answer: DownloadAnswer, response: Response): DownloadResponseDto {
    response.setHeader('Cache-Control', 'no-store');
    if (answer.retryAfterSeconds !== undefined) response.setHeader('Retry-After', String(answer.retryAfterSeconds));
    return answer.body;
  }
}

// Read from the request rather than with @Headers('prefer'), which the OpenAPI document would list as a
// required header beside the optional `Prefer` documented above.
const waitOf = (request: AuthenticatedRequest): number => preferredWaitSeconds(request.headers.prefer);
const jobOf = (params: DownloadPathDto): RunRef => ({ workflowId: params.workflow_id, jobId: params.job_id, taskId: null });
const taskOf = (params: TaskDownloadPathDto): RunRef => ({ workflowId: params.workflow_id, jobId: params.job_id, taskId: params.task_id });
