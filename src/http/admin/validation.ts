// Validators of the admin API. The app validates bodies without type coercion (a
// JSON body says what it means); a query string or a path is text, so there
// "limit=50" must become the integer its schema declares. Fastify's documented way
// to differ by part: one Ajv per part, chosen in setValidatorCompiler.
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';
import type { TSchema } from '@sinclair/typebox';
import { AdmpError } from '../../errors.js';

const make = (coerceTypes: boolean) => {
  const ajv = new Ajv({ coerceTypes, useDefaults: true, removeAdditional: false, allErrors: false, strict: false });
  addFormats.default(ajv);
  return ajv;
};
const text = make(true);
const json = make(false);

export const adminValidatorCompiler: FastifySchemaCompiler<object> = ({ schema, httpPart }) =>
  (httpPart === 'querystring' || httpPart === 'params' ? text : json).compile(schema);

const compiled = new WeakMap<object, ReturnType<typeof text.compile>>();

/**
 * Validates (and coerces, as for a query string) a value against an admin API schema
 * outside a route: the CLI's local path checks its input as the API would.
 */
export function checkAgainst<T>(schema: TSchema, value: unknown, where: string): T {
  let validate = compiled.get(schema);
  if (!validate) compiled.set(schema, (validate = text.compile(schema)));
  const copy = structuredClone(value);
  if (!validate(copy)) {
    const e = validate.errors?.[0];
    throw new AdmpError(
      'bad_request',
      `${where}${e?.instancePath.replace(/\//g, '.') ?? ''}: ${e?.message ?? 'invalid'}`,
    );
  }
  return copy as T;
}
