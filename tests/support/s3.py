"""A real S3 API on loopback: moto's server mode, for the object-storage stories.

The server speaks the S3 REST protocol over HTTP on 127.0.0.1 (a free port), so the app's
boto3 client signs, streams and presigns exactly as against MinIO or a cloud; only the
storage behind the API is moto's memory. Import the fixtures into a test module or conftest.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from app.settings import Settings

#: moto accepts any credentials; boto3 must find some, from the usual environment.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "roadchief-test",
    "AWS_SECRET_ACCESS_KEY": "roadchief-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The S3 server's URL, started once for the run."""
    from moto.server import ThreadedMotoServer

    saved = {name: os.environ.get(name) for name in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    """A new, empty bucket of the test's own."""
    name = f"roadchief-{uuid.uuid4().hex[:12]}"
    s3_client(s3_endpoint).create_bucket(Bucket=name)
    return name


def in_s3(settings: Settings, endpoint: str, bucket: str, **more: Any) -> Settings:
    """The settings with photos in `bucket`."""
    return settings.model_copy(
        update={
            "photo_store": "s3",
            "s3_endpoint_url": endpoint,
            "s3_bucket": bucket,
            "s3_region": "us-east-1",
            "s3_addressing_style": "path",
            **more,
        }
    )


def bucket_keys(endpoint: str, bucket: str) -> set[str]:
    pages = s3_client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}
