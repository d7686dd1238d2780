"""Photos: upload one (the first step of a two-step report), fetch its sizes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import File, UploadFile, status
from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from app.access.deps import PrincipalDep
from app.access.rules import Permission
from app.core.bodies import MULTIPART_FRAMING_BYTES, body_limit
from app.core.deps import SessionDep, SettingsDep
from app.core.errors import NotFound, problem_responses
from app.core.inputs import DatabaseId
from app.core.routes import api_router
from app.media import images, service
from app.media.schemas import PhotoOut

if TYPE_CHECKING:
    from app.settings import Settings

router = api_router(prefix="/api/v1/photos", tags=["photos"])

PHOTO_PROBLEMS = (
    images.PhotoUnsupported,
    images.PhotoCorrupt,
    images.PhotoTooLarge,
    images.PhotoTooManyPixels,
)


@router.post(
    "",
    summary="Upload one photo; use its id in a report (uploads no report uses are removed)",
    status_code=status.HTTP_201_CREATED,
    response_model=PhotoOut,
    responses=problem_responses(*PHOTO_PROBLEMS),
    form_limits={"max_files": 1},
)
@body_limit(lambda s: s.photo_max_bytes + MULTIPART_FRAMING_BYTES)
def upload_photo(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    file: Annotated[UploadFile, File(description="JPEG, PNG, WebP or HEIC.")],
) -> PhotoOut:
    """The caller's own photo. The same bytes sent again by the same user are the same photo
    (the same id); someone else's upload of them is theirs, sharing the stored file."""
    principal.require(Permission.PHOTOS_UPLOAD)
    return service.upload_photo(session, settings, principal, file.file)


@router.get(
    "/{photo_id}",
    summary="A photo's facts: format, size, EXIF time and place, links to its sizes",
    response_model=PhotoOut,
    responses=problem_responses(NotFound),
)
def get_photo(
    session: SessionDep, settings: SettingsDep, principal: PrincipalDep, photo_id: DatabaseId
) -> PhotoOut:
    return service.photo_out(service.visible_photo(session, principal, photo_id), settings)


@router.get(
    "/{photo_id}/{variant}",
    summary="The photo itself: original (with EXIF), display or thumbnail (no metadata)",
    response_class=FileResponse,
    responses={
        200: {
            "content": {
                f"image/{kind}": {"schema": {"type": "string", "format": "binary"}}
                for kind in ("jpeg", "png", "webp", "heif")
            },
            "description": "The image: display and thumbnail are always JPEG.",
            "headers": {
                "ETag": {
                    "description": "The file's content hash: it never changes (immutable).",
                    "schema": {"type": "string"},
                }
            },
        },
        307: {
            "description": "Photos kept in object storage (ROADCHIEF_PHOTO_STORE=s3): a "
            "redirect to a presigned URL of the image, valid for ROADCHIEF_PHOTO_URL_SECONDS.",
            "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}},
        },
        **problem_responses(NotFound),
    },
)
def get_photo_file(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    photo_id: DatabaseId,
    variant: service.Variant,
) -> Response:
    """Only for the uploader and users who may see a report or case using the photo."""
    found = service.photo_file(session, settings, principal, photo_id, variant)
    return photo_response(found, settings)


def photo_response(found: service.PhotoFile, settings: Settings) -> Response:
    """A photo's bytes as the store gives them: a redirect to a presigned URL, a stream
    passed on, or a local file (the API and the console answer alike)."""
    if found.url is not None:
        # The redirect is good while its URL is; the bytes behind it never change.
        return RedirectResponse(
            found.url,
            status_code=status.HTTP_307_TEMPORARY_REDIRECT,
            headers={"Cache-Control": f"private, max-age={settings.photo_url_seconds // 2}"},
        )
    headers = {"ETag": f'"{found.etag}"', "Cache-Control": "private, max-age=31536000, immutable"}
    if found.stream is not None:
        stream = found.stream
        return StreamingResponse(
            iter(lambda: stream.read(service.CHUNK), b""),
            media_type=found.media_type,
            headers={**headers, "Content-Length": str(found.size)},
            background=BackgroundTask(stream.close),
        )
    assert found.path is not None
    return FileResponse(found.path, media_type=found.media_type, headers=headers)
