"""Errors about the user's input. Each message names the input (file, key, path) and what was expected;
the command line prints it without a traceback and exits with status 2."""


class TsrError(Exception):
    """Base of every error caused by input tsr was given (config, data, checkpoint, arguments)."""


class DataError(TsrError):
    """A data root, LMDB or record that is missing or not what tsr expects."""


class CheckpointError(TsrError):
    """A checkpoint file that is missing, unreadable or of a layout tsr does not know."""
