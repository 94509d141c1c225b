// Validators of the admin API. The app validates bodies without type coercion (a
// JSON body says what it means); a query string or a path is text, so there
// "limit=50" must become the integer its schema declares. Fastify's documented way
// to differ by part: one Ajv per part, chosen in setValidatorCompiler.
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';

const make = (coerceTypes: boolean) => {
  const ajv = new Ajv({ coerceTypes, useDefaults: true, removeAdditional: false, allErrors: false, strict: false });
  addFormats.default(ajv);
  return ajv;
};
const text = make(true);
const json = make(false);

export const adminValidatorCompiler: FastifySchemaCompiler<object> = ({ schema, httpPart }) =>
  (httpPart === 'querystring' || httpPart === 'params' ? text : json).compile(schema);
