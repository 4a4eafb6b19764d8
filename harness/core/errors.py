"""Errors a user can act on: each message names the file, line or key at fault and the fix."""


class HarnessError(Exception):
    """Base for every error the CLI prints as a one-paragraph message instead of a traceback."""


class ConfigError(HarnessError):
    """An experiment file or --set override is wrong."""


class SuiteError(HarnessError):
    """A suite folder, its suite.yaml or one of its JSONL splits is wrong."""


class ModelError(HarnessError):
    """A model cannot be found, fetched, verified or loaded."""


class DeviceError(HarnessError):
    """The requested device or method needs hardware this machine does not have."""


class OutsideFailure(HarnessError):
    """A trial stopped by something outside its configuration (an endpoint that went down, a spending cap reached):
    it counts as failed in the run it failed in, and running the same command again runs it again."""


class EngineLost(OutsideFailure):
    """The engine every remaining local trial answers through stopped answering (a vLLM server found running went
    down): the trial fails, and the sweep stops rather than fail each trial after it the same way."""


class TrainingError(HarnessError):
    """Training went wrong in a way the trial records as its failure (a non-finite loss, say)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, as a scheduler (Slurm, Kubernetes, systemd) stops a job: a sweep stops as on Ctrl-C, recording the
    trial it interrupts, where the default handler ended the process and left that trial running in the storage."""
