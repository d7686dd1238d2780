"""Problem details (RFC 9457): the one place where error bodies are built.

Domain code raises a `Problem` subclass with a stable `code`; the handlers here turn it,
FastAPI's validation errors and anything unexpected into `application/problem+json`.
`title` and `detail` are written for Chinese users; `code` is for programs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from app.core.metrics import count_refused_photo

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = logging.getLogger(__name__)

#: Every problem type the API can answer with, by code (filled by Problem subclasses).
PROBLEM_TYPES: dict[str, type[Problem]] = {}


class FieldError(BaseModel):
    """One thing wrong with the input."""

    loc: list[str | int] = Field(description="Where: e.g. ['features', 3, 'geometry'].")
    code: str = Field(description="Stable machine code of this error.")
    message: str = Field(description="What is wrong, in Chinese.")


class ProblemBody(BaseModel):
    """RFC 9457 problem details, with the stable `code` and optional field errors."""

    type: str = Field(examples=["/problems/geometry_invalid"])
    title: str = Field(examples=["几何图形无效"])
    status: int = Field(examples=[422])
    detail: str | None = Field(default=None, examples=["第 3 个要素的多边形自相交"])
    instance: str | None = Field(default=None, examples=["/api/v1/territory/locate"])
    code: str = Field(examples=["geometry_invalid"])
    errors: list[FieldError] | None = None


class Problem(Exception):
    """Base of every expected error; subclasses set `code`, `status` and `title`."""

    code: ClassVar[str] = "problem"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "请求有误"
    #: Headers this problem's answers carry, with their OpenAPI descriptions.
    answer_headers: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.code in PROBLEM_TYPES and PROBLEM_TYPES[cls.code] is not cls:
            raise TypeError(f"problem code {cls.code!r} is defined twice")
        PROBLEM_TYPES[cls.code] = cls

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Sequence[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        status: int | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        if status is not None:  # where a standard fixes it (the OAuth token endpoint: 400)
            self.status = status  # type: ignore[misc]
        self.detail = detail
        self.errors = list(errors) if errors else None
        self.headers = headers
        self.extra = extra

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body = ProblemBody(
            type=f"/problems/{self.code}",
            title=self.title,
            status=self.status,
            detail=self.detail,
            instance=instance,
            code=self.code,
            errors=self.errors,
        ).model_dump(exclude_none=True)
        body.update(self.extra)
        return body


class NotFound(Problem):
    code = "not_found"
    status = 404
    title = "资源不存在"


class MethodNotAllowed(Problem):
    code = "method_not_allowed"
    status = 405
    title = "不支持该请求方法"


class ValidationFailed(Problem):
    code = "validation_failed"
    status = 422
    title = "请求参数校验失败"


class ServiceUnavailable(Problem):
    code = "service_unavailable"
    status = 503
    title = "服务暂不可用"


class InternalError(Problem):
    code = "internal_error"
    status = 500
    title = "服务器内部错误"


class BodyUnreadable(Problem):
    code = "body_unreadable"
    status = 400
    title = "请求体无法解析"


class BodyNotUtf8(Problem):
    code = "body_not_utf8"
    status = 400
    title = "请求体不是 UTF-8 编码"


class FormInvalid(Problem):
    code = "form_invalid"
    status = 400
    title = "表单格式错误"


class FormLimitExceeded(Problem):
    code = "form_limit_exceeded"
    status = 413
    title = "表单超出限制"


class ProblemInBody(StarletteHTTPException):
    """A Problem raised while a request body is being read. FastAPI lets only
    HTTPException out of its body reading as it is; anything else becomes a bare 400."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.status)
        self.problem = problem


# Chinese wording of Pydantic's error types (the English message stays in the log).
_PYDANTIC_MESSAGES = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不允许的字段",
    "string_type": "应为字符串",
    "string_too_short": "内容过短",
    "string_too_long": "内容过长",
    "string_pattern_mismatch": "格式不正确",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "float_parsing": "应为数字",
    "float_type": "应为数字",
    "bool_parsing": "应为布尔值",
    "greater_than": "数值过小",
    "greater_than_equal": "数值过小",
    "less_than": "数值过大",
    "less_than_equal": "数值过大",
    "literal_error": "取值不在允许范围内",
    "enum": "取值不在允许范围内",
    "list_type": "应为数组",
    "dict_type": "应为对象",
    "model_type": "应为对象",
    "json_invalid": "JSON 格式错误",
    "value_error": "取值无效",
    "union_tag_invalid": "类型不正确",
    "union_tag_not_found": "缺少类型字段",
    "too_short": "元素过少",
    "too_long": "元素过多",
}


def field_errors_from_pydantic(
    errors: Sequence[Any], prefix: Sequence[str | int] = ()
) -> list[FieldError]:
    """Pydantic's error list in this API's shape, messages in Chinese."""
    result = []
    for err in errors:
        kind = err.get("type", "value_error")
        message = _PYDANTIC_MESSAGES.get(kind, "取值无效")
        ctx = err.get("ctx") or {}
        if kind == "value_error" and "error" in ctx:
            message = str(ctx["error"])
        elif kind in ("literal_error", "enum") and "expected" in ctx:
            message = f"{message}（可选：{ctx['expected']}）"
        result.append(FieldError(loc=[*prefix, *err.get("loc", ())], code=kind, message=message))
    return result


def problem_response(problem: Problem, request: Request) -> JSONResponse:
    count_refused_photo(problem.code)
    return JSONResponse(
        problem.body(instance=request.url.path),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=problem.headers,
    )


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(exc, request)


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problem = ValidationFailed("请检查标出的字段", errors=field_errors_from_pydantic(exc.errors()))
    return problem_response(problem, request)


#: Starlette's form-parser limits (its English messages) and how they read in Chinese.
_FORM_LIMITS = (
    (re.compile(r"^Too many files\. Maximum number of files is (\d+)"), "文件过多：最多 {} 个"),
    (re.compile(r"^Too many fields\. Maximum number of fields is (\d+)"), "字段过多：最多 {} 个"),
    (re.compile(r"^(?:Field|Part) exceeded maximum size of (\d+)KB"), "文本字段过大：最多 {} KB"),
)


def _unreadable_body(exc: StarletteHTTPException) -> Problem:
    """The framework's bare 400 for a body it could not read, as a specific problem."""
    cause = exc.__cause__ or exc.__context__
    log.info("unreadable request body: %s (%r)", exc.detail, cause)
    if isinstance(cause, UnicodeDecodeError):
        return BodyNotUtf8("JSON 请求体须为 UTF-8 编码")
    if isinstance(cause, MultiPartException):
        for pattern, text in _FORM_LIMITS:
            if match := pattern.match(cause.message):
                return FormLimitExceeded(text.format(match.group(1)))
        return FormInvalid("表单请求体不完整或格式错误")
    return BodyUnreadable("请求体不完整或格式错误")


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    problem: Problem
    if isinstance(exc, ProblemInBody):
        problem = exc.problem
    elif exc.status_code == 404:
        problem = NotFound("请求的地址不存在")
    elif exc.status_code == 405:
        problem = MethodNotAllowed()
    elif exc.status_code == 400:
        problem = _unreadable_body(exc)
    else:
        log.warning("HTTP error from the framework: %s %s", exc.status_code, exc.detail)
        problem = Problem("请求无法处理", headers=dict(exc.headers) if exc.headers else None)
        problem.status = exc.status_code  # type: ignore[misc]
    return problem_response(problem, request)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return problem_response(InternalError("请稍后重试；如持续出现请联系管理员"), request)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)


def _describe(problems: Sequence[type[Problem]]) -> str:
    return "；".join(f"`{p.code}` {p.title}" for p in problems)


def _example(problem: type[Problem], status: int) -> dict[str, Any]:
    value = {
        "type": f"/problems/{problem.code}",
        "title": problem.title,
        "status": status,
        "code": problem.code,
    }
    return {"summary": problem.title, "value": value}


def _problem_entry(problems: Sequence[type[Problem]], status: int) -> dict[str, Any]:
    """One status's response object: the ProblemBody schema, one example per code (their
    keys are the codes: what `documented_problems` reads back) and the problems' headers."""
    entry: dict[str, Any] = {
        "description": _describe(problems),
        "content": {
            PROBLEM_MEDIA_TYPE: {
                "schema": {"$ref": "#/components/schemas/ProblemBody"},
                "examples": {p.code: _example(p, status) for p in problems},
            }
        },
    }
    headers = {name: text for p in problems for name, text in p.answer_headers.items()}
    if headers:
        entry["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    return entry


def problem_responses(
    *problems: type[Problem] | tuple[type[Problem], int],
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the problems a route may answer with; a
    `(problem, status)` pair for one this route answers with another status than its own.
    The problems every route of a kind answers (sign-in, validation, paging, bodies) are
    added to the document by `app.core.contract`; a test (tests/support/contract.py) fails when a
    route answers a problem its entry does not list."""
    by_status: dict[int, list[type[Problem]]] = {}
    for p in problems:
        problem, status = p if isinstance(p, tuple) else (p, p.status)
        if problem not in by_status.setdefault(status, []):
            by_status[status].append(problem)
    return {
        status: {"model": ProblemBody, **_problem_entry(ps, status)}
        for status, ps in sorted(by_status.items())
    }


def add_problem_responses(
    responses: dict[str, Any], problems: Sequence[type[Problem] | tuple[type[Problem], int]]
) -> None:
    """Add problems to an operation's `responses` in a generated OpenAPI document (for the
    problems that every route of a kind may answer with, added after generation)."""
    for p in problems:
        problem, status = p if isinstance(p, tuple) else (p, p.status)
        entry = responses.get(str(status))
        media = (entry or {}).get("content", {}).get(PROBLEM_MEDIA_TYPE)
        if entry is None or media is None:
            # None yet, or FastAPI's own (its default 422): this API answers problems.
            responses[str(status)] = _problem_entry([problem], status)
            continue
        examples = media.setdefault("examples", {})
        if problem.code in examples:
            continue
        examples[problem.code] = _example(problem, status)
        entry["description"] = "；".join(
            d for d in (entry.get("description"), _describe([problem])) if d
        )
        for name, text in problem.answer_headers.items():
            entry.setdefault("headers", {}).setdefault(
                name, {"description": text, "schema": {"type": "string"}}
            )
    responses_in_order = dict(sorted(responses.items()))
    responses.clear()
    responses.update(responses_in_order)


def documented_problems(operation: dict[str, Any]) -> set[tuple[int, str]]:
    """(status, code) of every problem an OpenAPI operation documents."""
    found: set[tuple[int, str]] = set()
    for status, entry in operation.get("responses", {}).items():
        media = entry.get("content", {}).get(PROBLEM_MEDIA_TYPE, {})
        found.update((int(status), code) for code in media.get("examples", {}))
    return found
