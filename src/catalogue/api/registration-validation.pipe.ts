import { ValidationPipe, type ValidationError } from '@nestjs/common';
import { AppError, type ErrorDetail } from '../../platform/errors.js';

/** Every broken field of a nested body, named by its path: `tasks[1].status`. */
function flatten(errors: ValidationError[], parent = ''): ErrorDetail[] {
  return errors.flatMap((error) => {
    const field = parent === '' ? error.property : /^\d+$/.test(error.property) ? `${parent}[${error.property}]` : `${parent}.${error.property}`;
    const own = Object.values(error.constraints ?? {}).map((message) => ({
      field,
      message: message.startsWith('property ') ? `${field} is not a known field` : message,
    }));
    return [...own, ...flatten(error.children ?? [], field)];
  });
}

/**
 * Bodies and path parameters of the catalogue API: unknown fields and wrong types are refused with 400
 * INVALID_REQUEST, one detail per field, before anything is written.
 */
export const registrationValidation = new ValidationPipe({
  whitelist: true,
  forbidNonWhitelisted: true,
  transform: true,
  exceptionFactory: (errors) => {
    const details = flatten(errors);
    return new AppError('INVALID_REQUEST', `invalid request: ${[...new Set(details.map((d) => d.field))].join(', ')}`, details);
  },
});
