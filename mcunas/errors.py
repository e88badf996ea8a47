"""Typed user-facing errors.

Every error a user can cause (a bad config, file, architecture, board name or dataset path)
is raised as a subclass of :class:`McunasError` with a message that names what is wrong and
where. The CLI prints the message and exits with status 2, without a traceback.
"""


class McunasError(Exception):
    """Base class of errors caused by user input or environment, reported without traceback."""


class ConfigError(McunasError):
    """An experiment config (YAML) is invalid: the message names the key path."""


class ArchitectureError(McunasError):
    """An architecture value does not belong to its search space."""


class BoardError(McunasError):
    """Unknown board name or malformed board file."""


class DatasetError(McunasError):
    """Unknown dataset, missing or corrupt dataset files."""


class ModelFormatError(McunasError):
    """A .tflite file that cannot be read or is not a supported int8 model."""


class ExportError(McunasError):
    """A stage of the PyTorch -> ONNX -> TFLite -> TFLM pipeline failed; the message names the stage."""


class RunDirError(McunasError):
    """A run directory is missing, incomplete or belongs to another configuration."""


class ProfileError(McunasError):
    """A latency profile (JSON) or a calibration measurements file is malformed."""


class StorageError(McunasError):
    """The Optuna storage of a run (database server, journal file) cannot be reached or used."""


class OutOfSpaceError(McunasError):
    """A file system ran out of space (or quota) while mcunas wrote a file; the path is named."""
