"""Feedback pages that show each test's result and message, not the hidden tests' source.

``nbgrader generate_feedback`` renders the autograded notebook, whose test cells hold the hidden
tests (fixed seeds included) and, after ``nbgrader autograde``, full tracebacks that quote them:
every student would take this term's hidden tests home. :class:`AecourseFeedback`, configured
in ``nbgrader_config.py`` as one of ``c.GenerateFeedback.preprocessors``, rewrites each test
cell of the page only: the hidden regions go (one comment line says so), and an error keeps its type
and message but not a traceback. The autograded notebook itself is unchanged, so Formgrader
still shows instructors the whole test. ``c.AecourseFeedback.show_test_source = True`` turns
the rewriting off. A failure's traceback from ``aecourse grade`` keeps the student's own frames
but not those of installed files, which show the grader machine's paths.
"""

from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor
from traitlets import Bool

__all__ = ["AecourseFeedback", "HIDDEN_NOTE", "without_installed_frames"]

HIDDEN_NOTE = "# (hidden tests: their result is below; their source is not shown)"


class AecourseFeedback(NbGraderPreprocessor):     # enabled by default, as nbgrader's
    """Hide the hidden tests' source (and tracebacks) of test cells in feedback pages."""

    show_test_source = Bool(False, help="Show test cells' hidden tests and tracebacks in "
                                        "feedback pages (nbgrader's default).").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        is_test = cell.cell_type == "code" and meta.get("grade") and not meta.get("solution")
        if self.show_test_source or not is_test:
            return cell, resources
        # nbgrader's own region finder, with the delimiters the course released with
        clear = ClearHiddenTests(parent=self)
        try:
            hidden = clear._remove_hidden_test_region(cell)
        except RuntimeError:                      # nested or unterminated: hide it all
            cell.source, hidden = "", True
        if hidden:
            cell.source = (cell.source.rstrip() + "\n" + HIDDEN_NOTE).lstrip()
        for output in cell.get("outputs", []):
            # aecourse grade's own failures carry only their message (every line of it); an
            # IPython traceback (nbgrader autograde) quotes the test's source: type and message
            if output.get("output_type") != "error":
                continue
            if output.get("ename") == "GradingFailure":
                output["traceback"] = without_installed_frames(output.get("traceback", []))
            else:
                output["traceback"] = [f"{output.get('ename', 'Error')}: "
                                       f"{output.get('evalue', '')}"]
        return cell, resources


def without_installed_frames(lines: list) -> list:
    """A traceback's lines without the frames of installed files (``File "/..."``: the
    grader's and the library's, which show the grader machine's paths); the student's own
    frames (``File "<cell>"``) and the message stay."""
    kept, skipping = [], False
    for line in lines:
        if line.lstrip().startswith('File "/'):
            skipping = True
        elif not (skipping and line.startswith("    ")):
            skipping = False
            kept.append(line)
    return kept
