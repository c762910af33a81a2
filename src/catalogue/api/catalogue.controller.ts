import { applyDecorators, Body, Controller, Delete, Get, HttpCode, Param, Put, UseGuards, UsePipes } from '@nestjs/common';
import { ApiBody, ApiOkResponse, ApiOperation, ApiResponse, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { ErrorEnvelopeDto } from '../../platform/http/error-envelope.dto.js';
import { CatalogueService, type JobView } from '../catalogue.service.js';
import { CATALOGUE_TOKEN_SCHEME, CatalogueTokenGuard } from './catalogue-token.guard.js';
import { JobPathDto, WorkflowPathDto } from './dto/catalogue-path.dto.js';
import { JobRegistrationDto, WorkflowRegistrationDto } from './dto/registration.dto.js';
import { registrationValidation } from './registration-validation.pipe.js';

const Errors = (...answers: Array<[number, string]>) =>
  applyDecorators(...answers.map(([status, description]) => ApiResponse({ status, description, type: ErrorEnvelopeDto })));
const COMMON_ERRORS: Array<[number, string]> = [
  [400, 'a malformed body or path parameter (INVALID_REQUEST; details name each field), or a source outside ASSET_BUCKETS or under the packages\' prefix (INVALID_SOURCE)'],
  [401, 'no token, or not INTERNAL_API_TOKEN (UNAUTHENTICATED)'],
  [413, 'a body over 1 MiB (PAYLOAD_TOO_LARGE)'],
];

/**
 * The catalogue API, for the platform's workflow engine: served on INTERNAL_PORT only. Each registration is
 * one transaction; a job registered anew with other sources, status, finished_at or tasks (added, changed or
 * removed) supersedes its live packages (expired, their objects deleted).
 */
@ApiTags('catalogue')
@ApiSecurity(CATALOGUE_TOKEN_SCHEME)
@UseGuards(CatalogueTokenGuard)
@UsePipes(registrationValidation)
@Controller('internal/v0/workflows/:workflow_id')
export class CatalogueController {
  constructor(private readonly catalogue: CatalogueService) {}

  @Put()
  @HttpCode(200)
  @ApiOperation({ summary: 'Creates the workflow for an organisation (idempotent); 409 when another organisation owns it' })
  @ApiBody({ type: WorkflowRegistrationDto })
  @ApiOkResponse({ description: 'the workflow: {workflow_id, organisation_id, created_at}' })
  @Errors(...COMMON_ERRORS, [409, 'another organisation owns the workflow (CONFLICT)'])
  registerWorkflow(@Param() path: WorkflowPathDto, @Body() body: WorkflowRegistrationDto) {
    return this.catalogue.registerWorkflow(path.workflow_id, body.organisation_id);
  }

  @Put('jobs/:job_id')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Creates or replaces a job and its tasks (the same body twice changes nothing); answers the stored job',
    description:
      'A job registered anew with another status, sources, finished_at or tasks (one added, changed or removed) supersedes its live operations and those of its changed or removed tasks: they become expired and their packages are deleted. The next download PUT builds from the new registration.',
  })
  @ApiBody({ type: JobRegistrationDto })
  @ApiOkResponse({ description: 'the job as stored, with its tasks' })
  @Errors(...COMMON_ERRORS, [404, 'no such workflow (NOT_FOUND)'])
  registerJob(@Param() path: JobPathDto, @Body() body: JobRegistrationDto): Promise<JobView> {
    return this.catalogue.registerJob({
      workflowId: path.workflow_id,
      jobId: path.job_id,
      status: body.status,
      inputs: body.inputs,
      outputs: body.outputs,
      finishedAt: body.finished_at == null ? undefined : new Date(body.finished_at),
      tasks: (body.tasks ?? []).map((task) => ({ taskId: task.task_id, status: task.status, inputs: task.inputs, outputs: task.outputs })),
    });
  }

  @Get('jobs/:job_id')
  @ApiOperation({ summary: 'The stored job, with its tasks' })
  @ApiOkResponse({ description: 'the job as stored, with its tasks' })
  @Errors(...COMMON_ERRORS, [404, 'no such job (NOT_FOUND)'])
  getJob(@Param() path: JobPathDto): Promise<JobView> {
    return this.catalogue.getJob(path.workflow_id, path.job_id);
  }

  @Delete('jobs/:job_id')
  @ApiOperation({ summary: 'Removes the job, its tasks, their operations and their packages' })
  @ApiOkResponse({ description: '{workflow_id, job_id, deleted: true}' })
  @Errors(...COMMON_ERRORS, [404, 'no such job (NOT_FOUND)'])
  deleteJob(@Param() path: JobPathDto) {
    return this.catalogue.deleteJob(path.workflow_id, path.job_id);
  }
}
