"""The browser pages: Jinja2 templates that load plain JavaScript from ``static/``. No torch here.

The templates are shells: everything a page shows comes from the public API (``/api/...``), which the
page's scripts call, so the page and a script see the same thing. A page for a job that does not exist
still renders; its script reports the API's 404.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from app.assets import STATIC_DIR, TEMPLATES_DIR

templates = Jinja2Templates(directory=TEMPLATES_DIR)
router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)


def mount_pages(app: FastAPI) -> None:
    """Add the pages at ``/`` and serve ``static/`` (scripts, stylesheet, vendored uPlot) at ``/static``.

    Not part of the ``/api`` router: the pages live at the root of the site.
    """
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


@router.get("/")
def train_page(request: Request) -> HTMLResponse:
    """The experiments and the form; ``/?kind=linear&lr=0.0001`` fills it in."""
    return templates.TemplateResponse(request, "index.html", {"active": "train"})


@router.get("/jobs")
def jobs_page(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "jobs.html", {"active": "jobs"})


@router.get("/jobs/{job_id}")
def job_page(request: Request, job_id: str) -> HTMLResponse:
    """The live view of one run."""
    return templates.TemplateResponse(request, "job.html", {"active": "jobs", "job_id": job_id})


@router.get("/compare")
def compare_page(request: Request) -> HTMLResponse:
    """``/compare?ids=a,b``: the runs' curves on one chart."""
    return templates.TemplateResponse(request, "compare.html", {"active": "compare"})


@router.get("/lessons")
def lessons_page(request: Request) -> HTMLResponse:
    """Every lesson, with links to its page and its class board; a teacher may delete one."""
    return templates.TemplateResponse(request, "lessons.html", {"active": "lessons"})


@router.get("/lessons/{lesson_id}")
def lesson_page(request: Request, lesson_id: int) -> HTMLResponse:
    """A teacher's lesson: its instructions and the form with its values (locked ones shown, hidden
    ones not)."""
    return templates.TemplateResponse(request, "lesson.html", {"active": "lessons", "lesson_id": lesson_id})


@router.get("/lessons/{lesson_id}/board")
def lesson_board_page(request: Request, lesson_id: int) -> HTMLResponse:
    """The class board: each student's best run of the lesson, live."""
    return templates.TemplateResponse(request, "lesson_board.html", {"active": "lessons", "lesson_id": lesson_id})
