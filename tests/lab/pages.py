"""What a person clicks in JupyterLab and in the formgrader, as small Playwright helpers.

Selectors follow the DOM of nbgrader 0.9's JupyterLab extension: the "Nbgrader" main menu
(``#jp-mainmenu-nbgrader``), the Assignments tab (``#released_assignments_list``,
``#fetched_assignments_list``, ``#submitted_assignments_list``, each with ``_loading``,
``_placeholder`` and ``_error`` children; the course dropdown ``#course_list``), and the
formgrader's Manage Assignments table (``#main-table``, one ``td`` class per column) shown in
an iframe inside Lab.
"""

from __future__ import annotations

import re

from playwright.sync_api import FrameLocator, Locator, Page, expect

TIMEOUT_MS = 60_000
SECTIONS = ("released", "fetched", "submitted")


def open_lab(page: Page, lab_url: str) -> None:
    page.goto(lab_url)
    expect(nbgrader_menu(page)).to_be_visible(timeout=TIMEOUT_MS)


def nbgrader_menu(page: Page) -> Locator:
    return page.locator("#jp-menu-panel .lm-MenuBar-itemLabel", has_text="Nbgrader")


def run_menu_command(page: Page, command: str) -> None:
    nbgrader_menu(page).click()
    page.locator(f'#jp-mainmenu-nbgrader li[data-command="{command}"]').click()


def main_tab(page: Page, label: str) -> Locator:
    return page.locator("#jp-main-dock-panel .lm-TabBar-tab", has_text=label)


# --- the student's Assignments tab -----------------------------------------------------------


def open_assignments(page: Page) -> None:
    run_menu_command(page, "nbgrader:open-assignment-list")
    expect(main_tab(page, "Assignments")).to_be_visible()
    wait_loaded(page)


def wait_loaded(page: Page) -> None:
    """Wait until no section of the Assignments tab shows "Loading, please wait..."."""
    for section in SECTIONS:
        expect(page.locator(f"#{section}_assignments_list_loading")).to_be_hidden(
            timeout=TIMEOUT_MS
        )


def rows(page: Page, section: str) -> Locator:
    return page.locator(f"#{section}_assignments_list > .list_item")


def section_error(page: Page, section: str) -> Locator:
    return page.locator(f"#{section}_assignments_list_error")


def course_choices(page: Page) -> list[str]:
    """The courses offered by the course dropdown of the Assignments tab."""
    expect(page.locator("#course_list_dropdown")).to_be_enabled(timeout=TIMEOUT_MS)
    return [text.strip() for text in page.locator("#course_list > li").all_inner_texts()]


def select_course(page: Page, course: str, on_open=None) -> None:
    """Pick a course in the drop-down; ``on_open`` runs while the drop-down is open."""
    expect(page.locator("#course_list_dropdown")).to_be_enabled(timeout=TIMEOUT_MS)
    page.locator("#course_list_dropdown").click()
    if on_open is not None:
        expect(page.locator("#course_list > li").first).to_be_visible()
        on_open()
    page.locator("#course_list > li > a").get_by_text(course, exact=True).click()
    expect(page.locator("#course_list_default")).to_have_text(course)
    wait_loaded(page)


def refresh_assignments(page: Page) -> None:
    page.locator("#refresh_assignments_list").click()
    expect(page.locator("#course_list_dropdown")).to_be_enabled(timeout=TIMEOUT_MS)
    wait_loaded(page)


def assignment_row(page: Page, section: str, assignment: str) -> Locator:
    return rows(page, section).filter(
        has=page.locator(".item_name").get_by_text(assignment, exact=True)
    )


def click_row_button(page: Page, section: str, assignment: str, label: str) -> None:
    row = assignment_row(page, section, assignment)
    row.locator(".item_status button", has_text=re.compile(f"^{label}$")).first.click()
    wait_loaded(page)


def element_id(course: str, assignment: str) -> str:
    """The id nbgrader's extension gives an assignment's collapsible notebook list."""
    return re.sub(r"[^A-Za-z0-9\-_]", "", f"nbgrader-{course}-{assignment}".replace(" ", "_"))


def open_fetched_notebook(page: Page, course: str, assignment: str, notebook: str) -> None:
    page.locator("#fetched_assignments_list a.assignment-notebooks-link").get_by_text(
        assignment, exact=True
    ).click()
    notebooks = page.locator(f"#{element_id(course, assignment)}.collapse.in")
    expect(notebooks).to_be_visible()
    notebooks.locator(".item_name a").get_by_text(notebook, exact=True).click()
    expect(main_tab(page, f"{notebook}.ipynb")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.locator(".jp-NotebookPanel:visible .jp-Cell").first).to_be_visible(
        timeout=TIMEOUT_MS
    )


def answer_cell(page: Page, index: int, source: str) -> None:
    """Replace the source of the open notebook's cell ``index`` by typing, then save."""
    editor = page.locator(".jp-NotebookPanel:visible .jp-Cell").nth(index).locator(".cm-content")
    editor.click()
    page.keyboard.press("ControlOrMeta+a")
    # insert_text types without key events, so the editor adds no brackets or indents.
    page.keyboard.insert_text(source)
    expect(page.locator(".jp-NotebookPanel:visible")).to_contain_text(source.splitlines()[-1])
    dirty = page.locator("#jp-main-dock-panel .lm-TabBar-tab.jp-mod-dirty")
    # File > Save Notebook; on a busy machine a click can land while the menu still opens,
    # so try again until the tab is no longer marked as modified.
    for _attempt in range(3):
        page.locator("#jp-menu-panel .lm-MenuBar-itemLabel", has_text="File").click()
        save = page.locator('#jp-mainmenu-file li[data-command="docmanager:save"]')
        expect(save).to_be_visible()
        save.click()
        try:
            expect(dirty).to_have_count(0, timeout=15_000)
            return
        except AssertionError:
            page.keyboard.press("Escape")
    expect(dirty).to_have_count(0)


def submissions(page: Page, course: str, assignment: str) -> Locator:
    """The student's submissions of an assignment (the first row of the list is empty)."""
    return page.locator(
        f"#{element_id(course, assignment)}-submissions > .list_item.nested_list_item"
    )


# --- the instructor's formgrader -------------------------------------------------------------


def open_formgrader(page: Page) -> FrameLocator:
    run_menu_command(page, "nbgrader:open-formgrader")
    frame = page.frame_locator("#formgrader-iframe iframe")
    expect(frame.locator("#main-table")).to_be_visible(timeout=TIMEOUT_MS)
    return frame


def reload_manage_assignments(page: Page, frame: FrameLocator) -> None:
    """Click "Manage Assignments" in the formgrader's sidebar and wait for the new page.

    Waiting for the navigation matters: a click on the old page's table would send its
    request and then lose the answer (and its modal) when the page goes away.
    """
    document = page.locator("#formgrader-iframe iframe").element_handle().content_frame()
    with document.expect_navigation(timeout=TIMEOUT_MS):
        frame.get_by_role("link", name="Manage Assignments").click()
    expect(frame.locator("#main-table td.name").first).to_be_visible(timeout=TIMEOUT_MS)


def formgrader_row(frame: FrameLocator, assignment: str) -> Locator:
    row = frame.locator("#main-table tr").filter(
        has=frame.locator("td.name a").get_by_text(assignment, exact=True)
    )
    expect(row).to_have_count(1, timeout=TIMEOUT_MS)
    return row


def formgrader_action(frame: FrameLocator, assignment: str, column: str, on_modal=None) -> str:
    """Click the link in a column of an assignment's row; return the success modal's text.

    ``on_modal`` (if given) is called while the modal is open, to take a screenshot.
    An error modal fails the test with its text (nbgrader's log and traceback).
    """
    formgrader_row(frame, assignment).locator(f"td.{column} a").click()
    modal = frame.locator("#success-modal, #error-modal")
    expect(modal).to_be_visible(timeout=TIMEOUT_MS)
    # Bootstrap adds "in" once the modal has faded in: screenshots then show it sharp.
    expect(modal).to_have_class(re.compile(r"\bin\b"))
    modal.page.wait_for_timeout(400)
    text = modal.inner_text()
    if on_modal is not None:
        on_modal()
    if frame.locator("#error-modal").count():
        raise AssertionError(f"the formgrader reported an error for {column}:\n{text}")
    modal.locator(".modal-footer button").click()
    expect(modal).to_have_count(0)
    # The row re-renders once the assignment is fetched again.
    expect(formgrader_row(frame, assignment).locator("td.name a")).to_be_visible()
    return text
