import { ApiProperty } from '@nestjs/swagger';
import { Matches } from 'class-validator';
import { EXTERNAL_ID_PATTERN, EXTERNAL_ID_RULE } from '../../../catalogue/ids.js';

export class DownloadPathDto {
  @ApiProperty({ pattern: EXTERNAL_ID_PATTERN.source, example: 'wf-2026-11-29', description: `the workflow id: ${EXTERNAL_ID_RULE}` })
  @Matches(EXTERNAL_ID_PATTERN, { message: `workflow_id must be ${EXTERNAL_ID_RULE}` })
  workflow_id!: string;

  @ApiProperty({ pattern: EXTERNAL_ID_PATTERN.source, example: 'job-42', description: `the job id within the workflow: ${EXTERNAL_ID_RULE}` })
  @Matches(EXTERNAL_ID_PATTERN, { message: `job_id must be ${EXTERNAL_ID_RULE}` })
  job_id!: string;
}

export class TaskDownloadPathDto extends DownloadPathDto {
  @ApiProperty({ pattern: EXTERNAL_ID_PATTERN.source, example: 'tile-31UFU', description: `the task id within the job: ${EXTERNAL_ID_RULE}` })
  @Matches(EXTERNAL_ID_PATTERN, { message: `task_id must be ${EXTERNAL_ID_RULE}` })
  task_id!: string;
}
