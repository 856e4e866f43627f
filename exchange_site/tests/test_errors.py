"""The site's own error answers (exchange_site/errors.py): JSON under the API's prefix, Django's
pages elsewhere."""

from __future__ import annotations


def test_unknown_page_outside_api_is_html(client, db):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_django_error_handlers_answer_json_under_api_and_html_elsewhere(rf):
    from django.core.exceptions import RequestDataTooBig, SuspiciousOperation

    from exchange_site import errors

    api, page = rf.get("/api/v1/x"), rf.get("/x")
    assert errors.bad_request(api, RequestDataTooBig()).status_code == 413
    assert errors.bad_request(api, SuspiciousOperation()).status_code == 400
    assert errors.bad_request(page, SuspiciousOperation())["Content-Type"].startswith("text/html")
    assert errors.permission_denied(api, Exception()).status_code == 403
    assert errors.permission_denied(page, Exception())["Content-Type"].startswith("text/html")
    assert errors.server_error(page).status_code == 500
