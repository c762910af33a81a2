import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { ArrayMaxSize, IsArray, IsIn, IsOptional, IsString, IsUUID, Matches, ValidateBy, ValidateNested } from 'class-validator';
import { JobStatus } from '../../../generated/prisma/enums.js';
import { EXTERNAL_ID_PATTERN, EXTERNAL_ID_RULE } from '../../ids.js';
import { MAX_SOURCES_PER_SIDE, MAX_TASKS } from '../../source-rules.js';

const STATUSES = Object.keys(JobStatus);

/** The list of S3 URIs a run read (`inputs`) or wrote (`outputs`); each URI is checked by the service itself. */
const SourceList = (field: 'inputs' | 'outputs') =>
  applyDecorators(
    ApiProperty({
      type: [String],
      maxItems: MAX_SOURCES_PER_SIDE,
      example: ['s3://assets/runs/42/inputs/', 's3://assets/aux/dem.tif'],
      description: `S3 URIs: a prefix (\`s3://bucket/prefix/\`, every object under it) or one object (\`s3://bucket/key\`); at most ${MAX_SOURCES_PER_SIDE}, in ASSET_BUCKETS`,
    }),
    IsArray({ message: `${field} must be an array of S3 URIs` }),
    ArrayMaxSize(MAX_SOURCES_PER_SIDE, { message: `${field} must list at most ${MAX_SOURCES_PER_SIDE} sources` }),
    IsString({ each: true, message: `${field} must be an array of S3 URIs` }),
  );

const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,9})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/i;

/**
 * An RFC 3339 date-time: a calendar date that exists, a time and an offset. ISO 8601 also allows week and
 * ordinal dates, basic formats and hour-only offsets, which JavaScript's Date cannot read (they were stored
 * as an invalid date and answered 500); JSON APIs exchange this profile of it.
 */
export function isDateTime(value: unknown): boolean {
  const match = typeof value === 'string' ? DATE_TIME.exec(value) : null;
  if (!match) return false;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  // setUTCFullYear, not Date.UTC, which reads the years 0 to 99 as 1900 to 1999.
  const lastDay = new Date(0);
  lastDay.setUTCFullYear(year, month, 0);
  const daysInMonth = lastDay.getUTCDate();
  // Postgres has no year 0.
  if (!(year >= 1 && month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth)) return false;
  // The offset may carry the instant out of those years ("0001-01-01T00:00:00+23:59" is in year 0).
  const instant = new Date(value as string).getTime();
  return instant >= FIRST_INSTANT && instant <= LAST_INSTANT;
}

/** What Postgres and toISOString both take: the years 1 to 9999, in UTC. */
const FIRST_INSTANT = new Date(0).setUTCFullYear(1, 0, 1);
const LAST_INSTANT = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

const IsDateTime = (message: string) => ValidateBy({ name: 'isDateTime', validator: { validate: isDateTime, defaultMessage: () => message } });

export class WorkflowRegistrationDto {
  @ApiProperty({ format: 'uuid', description: 'the organisation that owns the workflow' })
  @IsUUID('all', { message: 'organisation_id must be a UUID' })
  organisation_id!: string;
}

export class TaskRegistrationDto {
  @ApiProperty({ pattern: EXTERNAL_ID_PATTERN.source, example: 'tile-31UFU' })
  @IsString({ message: 'task_id must be a string' })
  @Matches(EXTERNAL_ID_PATTERN, { message: `task_id must be ${EXTERNAL_ID_RULE}` })
  task_id!: string;

  @ApiProperty({ enum: STATUSES })
  @IsIn(STATUSES, { message: `status must be one of ${STATUSES.join(', ')}` })
  status!: JobStatus;

  @SourceList('inputs')
  inputs!: string[];

  @SourceList('outputs')
  outputs!: string[];
}

export class JobRegistrationDto {
  @ApiProperty({ enum: STATUSES, description: 'queued and running are unfinished; completed, failed and cancelled are downloadable' })
  @IsIn(STATUSES, { message: `status must be one of ${STATUSES.join(', ')}` })
  status!: JobStatus;

  @SourceList('inputs')
  inputs!: string[];

  @SourceList('outputs')
  outputs!: string[];

  @ApiPropertyOptional({ type: 'string', format: 'date-time', nullable: true, description: 'when the run finished (finished runs only), as RFC 3339 (`2026-11-30T10:00:00Z`); kept from the last registration, else now, when absent or null' })
  @IsOptional()
  @IsDateTime('finished_at must be an RFC 3339 date-time, such as 2026-11-30T10:00:00Z')
  finished_at?: string | null;

  @ApiPropertyOptional({ type: [TaskRegistrationDto], maxItems: MAX_TASKS, description: `the job's tasks, at most ${MAX_TASKS}; they replace those registered before (absent: none)` })
  @IsOptional()
  @IsArray({ message: 'tasks must be an array' })
  @ArrayMaxSize(MAX_TASKS, { message: `tasks must list at most ${MAX_TASKS} tasks` })
  @ValidateNested({ each: true })
  @Type(() => TaskRegistrationDto)
  tasks?: TaskRegistrationDto[];
}
