import { SetMetadata } from '@nestjs/common';

export const IS_PUBLIC = 'isPublic';

/** Operational endpoints (health, metrics, docs) answer without an API key and outside the rate limit. */
export const Public = () => SetMetadata(IS_PUBLIC, true);
