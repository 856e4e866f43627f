"""URLs of API v1 (see docs/api.md); the OpenAPI schema and its docs page."""

from django.urls import path

from .schema_views import docs_view, schema_view
from .views import assignments, courses, extensions, files, grades, me, roster, submissions
from .views.regrades import (
    AssignmentRegradeListView,
    CourseRegradeListView,
    RegradeAnswerView,
    RegradeDetailView,
    RegradeWithdrawView,
    SubmissionRegradeListView,
)

app_name = "api"

COURSE = "courses/<str:course_id>"
ASSIGNMENT = f"{COURSE}/assignments/<str:assignment_id>"

urlpatterns = [
    path("me", me.MeView.as_view(), name="me"),
    path("courses", courses.CourseListView.as_view(), name="courses"),
    path(COURSE, courses.CourseDetailView.as_view(), name="course"),
    path(f"{COURSE}/members", courses.MemberListView.as_view(), name="members"),
    path(f"{COURSE}/members/<str:username>", courses.MemberDetailView.as_view(), name="member"),
    path(f"{COURSE}/roster", roster.RosterView.as_view(), name="roster"),
    path(f"{COURSE}/grades", grades.GradeExportView.as_view(), name="grades"),
    path(f"{COURSE}/assignments", assignments.AssignmentListView.as_view(), name="assignments"),
    path(ASSIGNMENT, assignments.AssignmentDetailView.as_view(), name="assignment"),
    path(f"{ASSIGNMENT}/release", assignments.ReleaseView.as_view(), name="release"),
    path(
        f"{ASSIGNMENT}/release/files",
        assignments.ReleaseFilesView.as_view(),
        name="release-files",
    ),
    path(
        f"{ASSIGNMENT}/submissions",
        assignments.SubmissionListView.as_view(),
        name="submissions",
    ),
    path(
        f"{ASSIGNMENT}/extensions",
        extensions.ExtensionListView.as_view(),
        name="extensions",
    ),
    path(
        f"{ASSIGNMENT}/extensions/<str:username>",
        extensions.ExtensionDetailView.as_view(),
        name="extension",
    ),
    path(f"{ASSIGNMENT}/scores", grades.AssignmentScoresView.as_view(), name="scores"),
    path(f"{ASSIGNMENT}/collect", assignments.CollectView.as_view(), name="collect"),
    path(
        f"{ASSIGNMENT}/feedback",
        assignments.AssignmentFeedbackView.as_view(),
        name="assignment-feedback",
    ),
    path(
        "submissions/<int:submission_id>",
        submissions.SubmissionDetailView.as_view(),
        name="submission",
    ),
    path(
        "submissions/<int:submission_id>/download",
        submissions.SubmissionDownloadView.as_view(),
        name="submission-download",
    ),
    path(
        "submissions/<int:submission_id>/feedback",
        submissions.SubmissionFeedbackView.as_view(),
        name="submission-feedback",
    ),
    path(f"{COURSE}/regrades", CourseRegradeListView.as_view(), name="course-regrades"),
    path(
        f"{ASSIGNMENT}/regrades",
        AssignmentRegradeListView.as_view(),
        name="assignment-regrades",
    ),
    path(
        "submissions/<int:submission_id>/regrades",
        SubmissionRegradeListView.as_view(),
        name="submission-regrades",
    ),
    path("regrades/<int:regrade_id>", RegradeDetailView.as_view(), name="regrade"),
    path(
        "regrades/<int:regrade_id>/answer",
        RegradeAnswerView.as_view(),
        name="regrade-answer",
    ),
    path(
        "regrades/<int:regrade_id>/withdraw",
        RegradeWithdrawView.as_view(),
        name="regrade-withdraw",
    ),
    path("files/<str:signed>", files.FileView.as_view(), name="file"),
    # The contract is public: clients and tools read it before they have a token.
    path("schema/", schema_view, name="schema"),
    path("docs/", docs_view, name="docs"),
]
