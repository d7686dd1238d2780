"""The floor: a bare FastAPI app served with the service's own uvicorn settings.

`python -m bench.floor_app PORT` serves `GET /floor` (a small JSON answer; `GET /floor-async` the
same from an `async` endpoint) and `POST /floor`
(a small JSON body validated by a Pydantic model and answered) with no middleware, no
database and no logging: what FastAPI and uvicorn cost on this machine, the ceiling every
service figure is divided by.
"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

from app.cli import server_options
from app.settings import Settings

app = FastAPI()


class Small(BaseModel):
    category_code: str
    description: str
    lon: float
    lat: float


@app.get("/floor")
def floor_get() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/floor-async")
async def floor_get_async() -> dict[str, str]:
    """The same answer from an `async` endpoint: no hand-off to the thread pool (what the
    service's `/healthz` is compared with: it is `async` too)."""
    return {"status": "ok"}


@app.post("/floor", status_code=201)
def floor_post(body: Small) -> Small:
    return body


if __name__ == "__main__":
    settings = Settings(database_url="sqlite:///:memory:")
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), **server_options(settings))
