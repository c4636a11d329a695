"""The nbgrader pipeline of every assignment in solutions/*/ (see tests/assignments/harness.py).

* sync: regenerating the release from solutions/ gives the committed exercises/;
* leak: the release contains no solution, no hidden test and no rubric;
* end-to-end: ``aecourse grade`` then nbgrader's generate_feedback/export give the solution
  every autograded point with no note at all (this is the test that every solution notebook
  runs top to bottom), the blank release none, and each plausible bug of
  tests/assignments/bugs_<ps>.py exactly the points of the test cells it does not break; no
  honest-but-buggy student is flagged for tampering;
* the measurement, in the same batch: for each bug, whether the *visible* tests (what
  ``nbgrader validate`` shows before submission) catch it, against its declared ``visible``,
  and, where every bug declares it, at least VISIBLE_GOAL of the bugs caught visibly.
  The table is printed (``pytest -rP``) for the closing note.

One ``aecourse grade`` batch per assignment; each assignment is its own xdist group, so that
with ``--dist loadgroup`` the five spread over the test workers.
"""

import re
import time

import nbformat
import pytest
from assignments import harness

ASSIGNMENTS = harness.assignments()
VISIBLE_GOAL = 0.7      # share of the plausible bugs the visible tests must catch
pytestmark = pytest.mark.skipif(not ASSIGNMENTS, reason="no assignments in solutions/ yet")


def _source(ps):
    return harness.read(harness.SOLUTIONS / ps / f"{ps}.ipynb")


def _release(ps):
    path = harness.EXERCISES / ps / f"{ps}.ipynb"
    assert path.exists(), f"{path} is missing: run `make release` and commit exercises/{ps}/"
    return harness.read(path)


@pytest.mark.parametrize("ps", ASSIGNMENTS)
def test_points_are_a_round_total_with_manual_and_autograded_parts(ps):
    source = _source(ps)
    tests, manual = harness.test_cells(source), harness.manual_cells(source)
    total = sum(tests.values()) + sum(manual.values())
    assert total % 5 == 0, f"{ps}: points sum to {total}, expected a round total (e.g. 20 or 25)"
    assert 1 <= len(manual) <= 2, f"{ps}: expected 1-2 written answers, found {sorted(manual)}"
    functions = {k for k, c in harness.solution_cells(source).items() if c.cell_type == "code"}
    assert 3 <= len(functions) <= 6, f"{ps}: expected 3-6 autograded parts, found {functions}"
    hidden = [k for k, c in harness.cells_by_id(source).items() if "BEGIN HIDDEN TESTS" in c.source]
    assert set(hidden) == set(tests), \
        f"{ps}: test cells without hidden tests: {sorted(set(tests) - set(hidden))}"


@pytest.mark.slow
@pytest.mark.parametrize("ps", ASSIGNMENTS)
def test_release_is_in_sync_with_solutions(ps, tmp_path):
    regenerated = harness.generate(harness.new_course(tmp_path, exercises=False), ps)
    committed = _release(ps)
    hint = f"exercises/{ps} is out of date with solutions/{ps}: run `make release` and commit it"
    fresh, old = harness.normalised(regenerated), harness.normalised(committed)
    assert len(fresh) == len(old), f"{hint} ({len(fresh)} cells generated, {len(old)} committed)"
    for i, (a, b) in enumerate(zip(fresh, old, strict=True)):
        assert a == b, f"{hint} (first difference in cell {i}:\n generated {a!r:.300}\n " \
                       f"committed {b!r:.300})"
    extra = {p.name for p in (harness.EXERCISES / ps).iterdir()} - {f"{ps}.ipynb"}
    assert not extra, f"{hint} (files in exercises/{ps} that nbgrader does not generate: {extra})"
    for cell in committed.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, \
                f"exercises/{ps} has outputs; run `make release` (it strips them)"


@pytest.mark.parametrize("ps", ASSIGNMENTS)
def test_release_leaks_no_solution_hidden_test_or_rubric(ps):
    source, release = _source(ps), _release(ps)
    text = "\n".join(c.source for c in release.cells)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text, f"exercises/{ps} contains {marker!r}"
    assert not re.search(r"\brubric\b", text, re.I), f"exercises/{ps} mentions a rubric"
    # Every distinctive line of a solution region (one that the source does not also show
    # outside solutions) must be absent from the release.
    visible = "\n".join(re.sub(r"BEGIN SOLUTION.*?END SOLUTION", "", c.source, flags=re.S)
                        for c in source.cells)
    for grade_id, cell in harness.solution_cells(source).items():
        for region in harness.solution_regions(cell.source):
            for line in (ln.strip() for ln in region.splitlines()):
                if len(line) >= 12 and line not in visible:
                    assert line not in text, \
                        f"exercises/{ps} leaks the solution of {grade_id!r}: {line!r}"
    released = harness.cells_by_id(release)
    for grade_id in harness.test_cells(source):
        stub = harness.without_hidden_tests(harness.cells_by_id(source)[grade_id].source)
        assert released[grade_id].source.strip() == stub.strip(), \
            f"exercises/{ps}: test cell {grade_id!r} is not the stub nbgrader leaves"


@pytest.mark.slow
@pytest.mark.parametrize("ps", [pytest.param(ps, marks=pytest.mark.xdist_group(f"grade_{ps}"))
                                for ps in ASSIGNMENTS])
def test_autograding_gives_solution_blank_and_each_bug_their_points(ps, tmp_path):
    start = time.perf_counter()
    source = _source(ps)
    bugs = harness.load_bugs(ps, source)
    points = harness.test_cells(source)
    total, manual = sum(points.values()), sum(harness.manual_cells(source).values())
    # The course's source tags failures of the visible tests; its release (the committed one but
    # for that tagging, see test_release_is_in_sync_with_solutions) is what the students submit.
    course = harness.new_course(tmp_path / "course")
    harness.tag_visible_failures(course, ps)
    release = harness.generate(course, ps)
    students = {"solution": harness.submission(release, source), "blank": release}
    expected = {"solution": set(), "blank": set(points)}
    for bug in bugs:
        students[f"bug-{bug['name']}"] = harness.submission(release, source, bug)
        expected[f"bug-{bug['name']}"] = set(bug["loses"])

    results = harness.grade(course, ps, students)

    problems = []
    for student, lost in expected.items():
        cells, row = results[student]["cells"], results[student]["csv"]
        want = {k: (0.0 if k in lost else p) for k, p in points.items()}
        got = {k: cells.get(k) for k in points}
        if got != want:
            wrong = {k: f"expected {want[k]:g}, got {got[k]}" for k in points if got[k] != want[k]}
            problems.append(f"{student}: test cells scored wrongly: {wrong}")
        score = sum(want.values())
        if row is None or abs(float(row["score"]) - score) > 1e-9 \
                or abs(float(row["max_score"]) - (total + manual)) > 1e-9:
            problems.append(f"{student}: CSV row {row} should have score {score:g} "
                            f"and max_score {total + manual:g}")
        if not results[student]["feedback"]:
            problems.append(f"{student}: no feedback HTML was generated")
        if results[student]["flagged"]:
            problems.append(f"{student}: flagged for tampering (an honest-but-buggy student)")
        if not results[student]["report"]:
            problems.append(f"{student}: not in aecourse grade's CSV report")
    for row in results["solution"]["report"]:
        if row["notes"].strip() or row["reason"].strip():
            problems.append(f"solution: the reference solution has a note or a reason in the "
                            f"report: {row['cell']}: {row['reason']!r} {row['notes']!r}")
    table = [f"| {ps} bug | lost points | caught by visible tests | caught by hidden tests |",
             "|---|---|---|---|"]
    visibly, hidden = {}, {}
    for bug in bugs:
        student = f"bug-{bug['name']}"
        visibly[bug["name"]] = harness.failed_visibly(results[student]["report"], bug["loses"])
        hidden[bug["name"]] = bool(bug["loses"]) and all(results[student]["cells"].get(k) == 0
                                                         for k in bug["loses"])
        table.append(f"| {bug['name']} | {', '.join(bug['loses'])} | "
                     f"{'yes' if visibly[bug['name']] else 'no'} | "
                     f"{'yes' if hidden[bug['name']] else 'no'} |")
        if bug["visible"] is not None and bug["visible"] != visibly[bug["name"]]:
            problems.append(f"{student}: declared visible={bug['visible']}, but the visible "
                            f"tests {'catch' if visibly[bug['name']] else 'miss'} it")
    share = sum(visibly.values()) / max(len(bugs), 1)
    table.append(f"| **{ps}: {len(bugs)} bugs** | | **{sum(visibly.values())}/{len(bugs)} "
                 f"({share:.0%})** | **{sum(hidden.values())}/{len(bugs)}** |")
    if bugs and all(bug["visible"] is not None for bug in bugs) and share < VISIBLE_GOAL:
        problems.append(f"{ps}: the visible tests catch {share:.0%} of the bugs, "
                        f"below the goal of {VISIBLE_GOAL:.0%}")
    print("\n".join(table))
    seconds = time.perf_counter() - start
    print(f"{ps}: {len(students)} students graded end to end in {seconds:.1f} s")
    assert not problems, f"{ps}:\n" + "\n".join(problems) + f"\n{results[None][-3000:]}"


def test_the_measurement_tells_a_visible_failure_from_a_hidden_one(tmp_path):
    # A one-cell assignment, tagged as the end-to-end test tags each course copy: a failure in
    # the visible part carries the tag, one in the hidden part does not, and the cell's type of
    # failure is kept.
    cell = nbformat.v4.new_code_cell(
        "assert f(1) == 1, 'visible'\n### BEGIN HIDDEN TESTS\nassert f(2) == 2, 'hidden'\n"
        "### END HIDDEN TESTS",
        metadata={"nbgrader": {"grade": True, "solution": False, "grade_id": "test_f",
                               "points": 1, "locked": True}})
    (tmp_path / "solutions" / "tiny").mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]),
                   str(tmp_path / "solutions" / "tiny" / "tiny.ipynb"))
    harness.tag_visible_failures(tmp_path, "tiny")
    tagged = harness.read(tmp_path / "solutions" / "tiny" / "tiny.ipynb").cells[0].source
    reasons = {}
    for label, f in {"right": lambda v: v, "wrong at 1": lambda v: 0,
                     "wrong at 2": lambda v: v % 2, "raises": lambda v: 1 / 0}.items():
        try:
            exec(tagged, {"f": f})  # noqa: S102  (the test's own cell)
            reasons[label] = ""
        except Exception as error:  # noqa: BLE001
            reasons[label] = f"{type(error).__name__}: {error}"
    rows = {label: [{"cell": "test_f", "reason": reason}] for label, reason in reasons.items()}
    assert reasons["right"] == ""
    assert harness.failed_visibly(rows["wrong at 1"], ["test_f"])
    assert not harness.failed_visibly(rows["wrong at 2"], ["test_f"])
    assert reasons["wrong at 2"] == "AssertionError: hidden"
    assert reasons["raises"].startswith("ZeroDivisionError: " + harness.VISIBLE_TAG)
    assert not harness.failed_visibly(rows["right"], ["test_f"])
