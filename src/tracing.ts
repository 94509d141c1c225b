// OpenTelemetry spans through @opentelemetry/api only. Without a registered SDK
// the API's tracer is a no-op (no cost, nothing exported); `startTracing` loads and
// registers the Node SDK only when the standard OTEL_* variables ask for an exporter
// (OTEL_TRACES_EXPORTER, or an OTLP endpoint). The SDK reads every OTEL_* variable
// itself (endpoint, protocol, headers, sampler, service name).
import {
  SpanStatusCode,
  trace,
  type Attributes,
  type Span,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import type { Logger } from './log.js';

// `trace.getTracer` makes a new proxy tracer on every call (spans run on every send, pull
// and ack): one per provider instead. The provider object stays the same when an SDK
// registers later (the proxy tracer then finds it) and changes only when `trace.disable()`
// resets the API (tests), so a new one gets a new tracer.
let provider: TracerProvider | undefined;
let cached: Tracer | undefined;
function tracer(): Tracer {
  const current = trace.getTracerProvider();
  if (current !== provider || !cached) {
    provider = current;
    cached = current.getTracer('admp');
  }
  return cached;
}

/** Runs fn in an active span; a throw marks the span as an error and is rethrown. */
export function withSpan<T>(name: string, attributes: Attributes, fn: (span: Span) => Promise<T>): Promise<T> {
  return tracer().startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      throw err;
    } finally {
      span.end();
    }
  });
}

/** True when the OTEL_* environment asks for trace export (OpenTelemetry SDK environment specification). */
export function tracingRequested(env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_SDK_DISABLED?.toLowerCase() === 'true') return false;
  const exporter = env.OTEL_TRACES_EXPORTER?.trim().toLowerCase();
  if (exporter) return exporter !== 'none';
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/**
 * Starts the OpenTelemetry Node SDK when the environment asks for export; it reads
 * every OTEL_* variable itself. Returns the shutdown that flushes pending spans.
 */
export async function startTracing(env: NodeJS.ProcessEnv, log: Logger): Promise<() => Promise<void>> {
  if (!tracingRequested(env)) return async () => undefined;
  // Loaded only when asked for: the SDK and its exporters cost start time and memory.
  const { NodeSDK } = await import('@opentelemetry/sdk-node');
  const sdk = new NodeSDK({ serviceName: env.OTEL_SERVICE_NAME ?? 'admp' });
  sdk.start();
  log.info({ event: 'tracing' }, 'OpenTelemetry trace export on (configured by OTEL_* variables)');
  return () => sdk.shutdown();
}
