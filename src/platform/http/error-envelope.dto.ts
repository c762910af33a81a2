import { ApiProperty } from '@nestjs/swagger';
import { ERROR_STATUS } from '../errors.js';

/** Every code an HTTP answer can carry (INVALID_ARGUMENT is the operator CLI's). */
export const HTTP_ERROR_CODES = Object.keys(ERROR_STATUS).filter((code) => code !== 'INVALID_ARGUMENT');

export class ErrorDetailDto {
  @ApiProperty({ required: false, example: 'workflow_id' })
  field?: string;

  @ApiProperty({ example: 'workflow_id must be 1 to 64 characters of A-Z a-z 0-9 _ -' })
  message!: string;
}

export class ErrorBodyDto {
  @ApiProperty({
    example: 'INVALID_PARAMETER',
    enum: HTTP_ERROR_CODES,
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
