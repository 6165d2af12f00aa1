import type { RequestHandler } from 'express';
import checkinRequestSchema from '../../../schemas/api/checkin-request.schema.json';
import secAggKeysSchema from '../../../schemas/api/secagg-keys.schema.json';
import secAggSharesSchema from '../../../schemas/api/secagg-shares.schema.json';
import secAggUnmaskSchema from '../../../schemas/api/secagg-unmask.schema.json';
import sessionAnswersSchema from '../../../schemas/api/session-answers.schema.json';
import { AppError } from '../../errors';
import { addSchema, schemaErrorDetails, validatorFor } from '../../schema-validation';

/** The request schemas of the API (schemas/api/), registered once in the process's shared ajv. */
export const API_SCHEMAS = {
  'checkin-request.schema.json': checkinRequestSchema,
  'secagg-keys.schema.json': secAggKeysSchema,
  'secagg-shares.schema.json': secAggSharesSchema,
  'secagg-unmask.schema.json': secAggUnmaskSchema,
  'session-answers.schema.json': sessionAnswersSchema,
} as const;

/** A schema file name under schemas/api/. */
export type ApiSchema = keyof typeof API_SCHEMAS;

for (const schema of Object.values(API_SCHEMAS)) {
  addSchema(schema);
}

/**
 * A check of a body against a schema from schemas/api/: throws 400 REQUEST_INVALID with every problem, each
 * located by a JSON pointer into the body.
 */
export function bodyChecker(schema: ApiSchema): (body: unknown) => void {
  const validate = validatorFor(`api/${schema}`);
  return (body) => {
    if (!validate(body)) {
      throw new AppError(
        'REQUEST_INVALID',
        `the body does not match schemas/api/${schema}`,
        schemaErrorDetails(validate.errors),
      );
    }
  };
}

/** {@link bodyChecker} of `req.body` as express middleware. */
export function validateBody(schema: ApiSchema): RequestHandler {
  const check = bodyChecker(schema);
  return (req, _res, next) => {
    check(req.body);
    next();
  };
}
