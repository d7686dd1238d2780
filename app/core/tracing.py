"""OpenTelemetry traces across a request, its SQL and outgoing webhooks: off unless the
standard environment variables ask for them.

Set `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or
`OTEL_TRACES_EXPORTER=otlp|console`) and the SDK sends spans by OTLP over HTTP, configured
by the other standard variables as usual (`OTEL_SERVICE_NAME`, default `roadchief`;
`OTEL_TRACES_SAMPLER`, `OTEL_EXPORTER_OTLP_HEADERS`, ...). Log lines written inside a span
carry its `trace_id` and `span_id` (`app.core.logging`), beside the `request_id`.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI
from opentelemetry import trace
from sqlalchemy import Engine

ASKING = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")

_provider: Any = None


def tracing_wanted() -> bool:
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none" or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    return bool(exporter) or any(os.environ.get(name) for name in ASKING)


def _install_provider(exporter: object | None) -> None:
    """One tracer provider per process (OpenTelemetry allows setting it once); an
    exporter given (tests: spans kept in memory) is added to it, sending each span at once."""
    global _provider
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
        SpanExporter,
    )

    if _provider is None:
        name = os.environ.get("OTEL_SERVICE_NAME", "roadchief")
        resource = Resource.create({"service.name": name}).merge(OTELResourceDetector().detect())
        _provider = TracerProvider(resource=resource)
        if exporter is None and os.environ.get("OTEL_TRACES_EXPORTER", "").lower() == "console":
            _provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        elif exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(_provider)
    if isinstance(exporter, SpanExporter):
        _provider.add_span_processor(SimpleSpanProcessor(exporter))


def configure_tracing(app: FastAPI, engine: Engine, *, exporter: object | None = None) -> bool:
    """Instrument the app, its engine and httpx (webhooks) when traces are wanted (or an
    exporter is given); True if they are."""
    if exporter is None and not tracing_wanted():
        return False
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.metrics import get_meter

    _install_provider(exporter)
    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,metrics")
    # The engine's own tracer, not SQLAlchemyInstrumentor().instrument(): that one also
    # patches create_async_engine (asyncio, greenlet: not used here) and checks a version
    # range that lags SQLAlchemy 2.1, whose cursor events it listens to are unchanged.
    usage = get_meter("roadchief.sqlalchemy").create_up_down_counter(
        "db.client.connections.usage", unit="connections"
    )
    EngineTracer(trace.get_tracer("roadchief.sqlalchemy"), engine, usage)
    if not HTTPXClientInstrumentor().is_instrumented_by_opentelemetry:
        HTTPXClientInstrumentor().instrument()  # webhook deliveries
    return True


def trace_ids() -> dict[str, str]:
    """The current span's ids in hex, as OTLP back ends show them (empty outside a span)."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}
