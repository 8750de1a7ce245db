"""One exception type for every input the user got wrong, reported as one line."""
import functools
import sys


class UserError(Exception):
    """Bad input (data, flags, checkpoints): printed as one line, exit code 2, no traceback."""


def exit_on_user_error(prog):
    """Decorate a CLI entry point so a UserError becomes `prog: error: msg` and exit code 2."""

    def decorate(main):
        @functools.wraps(main)
        def wrapper(*args, **kwargs):
            try:
                return main(*args, **kwargs)
            except UserError as e:
                print(f"{prog}: error: {e}", file=sys.stderr)
                sys.exit(2)

        return wrapper

    return decorate
