"""The exit codes every command and entry point ends with: a contract with whoever runs them (a shell,
the Makefile, the Flex Template launcher, the Airflow DAG), documented in docs/reference/cli.md.

Plain integers and the standard library only, so the console entry point, the Flex Template entry
point and the template's own tools read them without importing anything else.
"""

from __future__ import annotations

EXIT_JOB_FAILED = 1
"""The run failed its verdict (too many failed records, or drift under `--on-drift fail`; the output is
still complete), or a local worker process died."""
EXIT_CONFIG_ERROR = 2
"""A usage or configuration error, reported as one line with nothing written: argparse's and click's own
status for a usage error, so the job's own refusals and the parsers' read alike."""
SIGNAL_BASE = 128
"""A process a signal ended exits with this plus the signal's number, as shells report it: 130 for
SIGINT (Ctrl-C), 143 for SIGTERM."""


def exit_code_for_signal(signum: int) -> int:
    """The exit code of a command stopped by signal `signum`."""
    return SIGNAL_BASE + signum
