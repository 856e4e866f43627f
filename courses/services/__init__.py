"""The exchange's operations: every write lives here once, and every interface (API views,
admin actions, web pages, manage.py commands) calls these functions.

Each operation takes keyword arguments, checks the caller's role through
``courses.permissions``, keeps slow file I/O outside its transaction, records its rows in
one transaction (so a failure records nothing) and writes an AuditEvent.

The operations live in modules by concern; callers use them through this package
(``from courses import services; services.submit_assignment(...)``).
"""

from ..exceptions import PermissionDenied
from .audit import record_event
from .bundles import StagedBundle, Upload, record_bundle, stage_bundle
from .deletion import (
    _delete_bundles,
    delete_assignment,
    delete_course,
    delete_feedback,
    delete_submission,
    delete_user,
)
from .feedback import fetch_feedback, release_feedback
from .feedback_many import MAX_FEEDBACK_BATCH, release_feedback_many
from .guards import COURSE_LOCK_SPACE, require_course_role
from .imports import (
    import_course_record,
    import_feedback,
    import_member,
    import_release,
    import_submission,
)
from .members import (
    PROFILE_FIELDS,
    USERNAME_MAX,
    add_member,
    create_course,
    get_or_create_user,
    remove_member,
    username_problem,
)
from .releases import (
    fetch_assignment,
    release_assignment,
    set_due_date,
    unrelease_assignment,
)
from .submissions import collect_submissions, submit_assignment

__all__ = [
    "COURSE_LOCK_SPACE",
    "MAX_FEEDBACK_BATCH",
    "PROFILE_FIELDS",
    "USERNAME_MAX",
    "PermissionDenied",
    "StagedBundle",
    "Upload",
    "_delete_bundles",
    "add_member",
    "collect_submissions",
    "create_course",
    "delete_assignment",
    "delete_course",
    "delete_feedback",
    "delete_submission",
    "delete_user",
    "fetch_assignment",
    "fetch_feedback",
    "get_or_create_user",
    "import_course_record",
    "import_feedback",
    "import_member",
    "import_release",
    "import_submission",
    "record_bundle",
    "record_event",
    "release_assignment",
    "release_feedback",
    "release_feedback_many",
    "remove_member",
    "require_course_role",
    "set_due_date",
    "stage_bundle",
    "submit_assignment",
    "unrelease_assignment",
    "username_problem",
]
