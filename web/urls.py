"""URLs of the web pages (the site's root), login and logout."""

from django.urls import path

from . import views
from .views_manage import edit_deadlines, grant_extension, release, revoke_extension, unrelease
from .views_regrades import ask_regrade, course_regrades, regrade_page, withdraw_regrade

app_name = "web"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.ExchangeLoginView.as_view(), name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("logged-out/", views.logged_out, name="logged-out"),
    path("login-failed/", views.login_failed, name="login-failed"),
    path("courses/<str:course_code>/", views.course_page, name="course"),
    path("courses/<str:course_code>/audit/", views.audit_page, name="audit"),
    path(
        "courses/<str:course_code>/assignments/<str:assignment_code>/",
        views.assignment_page,
        name="assignment",
    ),
    path(
        "courses/<str:course_code>/assignments/<str:assignment_code>/latest.zip",
        views.download_latest,
        name="download-latest",
    ),
    path("courses/<str:course_code>/release/", release, name="release"),
    path(
        "courses/<str:course_code>/assignments/<str:assignment_code>/deadlines/",
        edit_deadlines,
        name="edit-deadlines",
    ),
    path(
        "courses/<str:course_code>/assignments/<str:assignment_code>/extensions/",
        grant_extension,
        name="grant-extension",
    ),
    path(
        "courses/<str:course_code>/assignments/<str:assignment_code>/extensions/<str:username>/revoke/",
        revoke_extension,
        name="revoke-extension",
    ),
    path(
        "courses/<str:course_code>/assignments/<str:assignment_code>/unrelease/",
        unrelease,
        name="unrelease",
    ),
    path("submissions/<int:submission_id>/", views.submission_page, name="submission"),
    path("submissions/<int:submission_id>/download", views.submission_zip, name="submission-zip"),
    path(
        "submissions/<int:submission_id>/regrade/",
        ask_regrade,
        name="regrade-ask",
    ),
    path("regrades/<int:regrade_id>/", regrade_page, name="regrade"),
    path(
        "regrades/<int:regrade_id>/withdraw/",
        withdraw_regrade,
        name="regrade-withdraw",
    ),
    path(
        "courses/<str:course_code>/regrades/",
        course_regrades,
        name="course-regrades",
    ),
    path(
        "submissions/<int:submission_id>/<str:which>/files/<path:path>",
        views.submission_file,
        name="file",
    ),
    path(
        "submissions/<int:submission_id>/<str:which>/view/<path:path>",
        views.submission_file_view,
        name="file-view",
    ),
]
