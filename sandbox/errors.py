"""The errors the trusted side raises when it cannot get an answer from a submission."""


class SubmissionError(AssertionError):
    """A check could not run the implementation under test; pytest reports it as a failed check."""


class SandboxError(SubmissionError):
    """A check could not get an answer from the worker (it died, hung, or broke the protocol)."""


class RemoteError(Exception):
    """The student's code raised in the worker; ``type_name`` is its exception's class name."""

    def __init__(self, type_name: str, message: str):
        super().__init__(message)
        self.type_name = type_name
