"""Written answers that try to run code. The grader reads this file as text and never runs it, so
the file below is never created, and the strings are refused by the answer parser."""
import pathlib

pathlib.Path("dave_was_here.txt").write_text("answers.py was executed")

KL_GAUSSIAN = "__import__('os').system('echo hacked')"
AFFINE_FLOW_DENSITY = "().__class__.__base__.__subclasses__()"
COUPLING_LOG_DET = str(10**10)  # not a string literal: ignored, with a note
