import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class OperationErrorDto {
  @ApiProperty({ example: 'SOURCE_MISSING' })
  code!: string;

  @ApiProperty({ example: 'an asset disappeared while it was being packaged' })
  message!: string;
}

/** The 200 body: the upstream API's four fields first, spelled as it spells them, then documented extras. */
export class DownloadResponseDto {
  @ApiProperty({ format: 'uuid', description: 'the download operation id; stable across repeated PUTs while the operation lives' })
  id!: string;

  @ApiProperty({ enum: ['pending', 'ready', 'failed', 'expired', 'cancelled'] })
  status!: 'pending' | 'ready' | 'failed' | 'expired' | 'cancelled';

  @ApiProperty({ description: 'presigned GET URL of the ZIP when ready; the empty string otherwise (never null)', example: '' })
  signed_url!: string;

  @ApiProperty({ description: 'the workflow id (camelCase, as the upstream API spells it)' })
  workflowId!: string;

  @ApiProperty({ description: 'the job id' })
  job_id!: string;

  @ApiPropertyOptional({ description: 'the task id, for the package of one task' })
  task_id?: string;

  @ApiProperty({ minimum: 0, maximum: 100, description: 'packaging progress in percent; 100 once ready' })
  progress!: number;

  @ApiProperty({ type: 'integer', nullable: true, description: 'size of the ZIP in bytes, once ready' })
  size_bytes!: number | null;

  @ApiProperty({
    type: 'string',
    nullable: true,
    pattern: '^[0-9a-f]{64}$',
    description: 'SHA-256 (hex) of the whole ZIP once ready: what `sha256sum` prints for the downloaded file, to check a download of many GB',
  })
  sha256!: string | null;

  @ApiProperty({ type: 'string', format: 'date-time', nullable: true, description: 'when signed_url stops working' })
  expires_at!: string | null;

  @ApiProperty({ type: 'string', format: 'date-time' })
  created_at!: string;

  @ApiPropertyOptional({ type: OperationErrorDto, description: 'why the operation failed (failed only)' })
  error?: OperationErrorDto;
}
