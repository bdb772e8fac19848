"""The errors the trusted side raises when it cannot get an answer from a submission."""


class SubmissionError(AssertionError):
    """A check could not run the implementation under test; pytest reports it as a failed check."""
