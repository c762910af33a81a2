import { ApiProperty } from '@nestjs/swagger';
import { Matches } from 'class-validator';
import { EXTERNAL_ID_PATTERN, EXTERNAL_ID_RULE } from '../../ids.js';

export class WorkflowPathDto {
  @ApiProperty({ pattern: EXTERNAL_ID_PATTERN.source })
  @Matches(EXTERNAL_ID_PATTERN, { message: `workflow_id must be ${EXTERNAL_ID_RULE}` })
  workflow_id!: string;
}

export class JobPathDto extends WorkflowPathDto {
  @ApiProperty({ pattern: EXTERNAL_ID_PATTERN.source })
  @Matches(EXTERNAL_ID_PATTERN, { message: `job_id must be ${EXTERNAL_ID_RULE}` })
  job_id!: string;
}
