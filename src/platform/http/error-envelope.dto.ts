import { ApiProperty } from '@nestjs/swagger';

export class ErrorDetailDto {
  @ApiProperty({ required: false, example: 'workflow_id' })
  field?: string;

  @ApiProperty({ example: 'workflow_id must be 1 to 64 characters of A-Z a-z 0-9 _ -' })
  message!: string;
}

export class ErrorBodyDto {
  @ApiProperty({
    example: 'INVALID_PARAMETER',
    enum: ['INVALID_PARAMETER', 'INVALID_REQUEST', 'UNAUTHENTICATED', 'FORBIDDEN', 'NOT_FOUND', 'JOB_NOT_FINISHED', 'RATE_LIMITED', 'SERVICE_UNAVAILABLE', 'INTERNAL'],
  })
  code!: string;

  @ApiProperty({ example: 'invalid path parameter: workflow_id' })
  message!: string;

  @ApiProperty({ type: [ErrorDetailDto] })
  details!: ErrorDetailDto[];
}

/** The one envelope of every non-2xx answer. */
export class ErrorEnvelopeDto {
  @ApiProperty({ type: ErrorBodyDto })
  error!: ErrorBodyDto;
}
