"""The one exception a user should ever see: a problem with their input, and how to fix it."""


class FashionCNNError(Exception):
    """Bad input from the user: a missing file, an unknown name, an invalid option.

    The message is one line that names the problem and says what to do instead. The command line
    prints it without a traceback and exits with status 2.

    Example:
        >>> raise FashionCNNError("unknown dataset 'fashon-mnist'; choose one of: fashion-mnist, mnist")
        Traceback (most recent call last):
        ...
        fashion_cnn.errors.FashionCNNError: unknown dataset 'fashon-mnist'; choose one of: fashion-mnist, mnist
    """

    exit_code = 2


def first_line(error: BaseException, limit: int = 160) -> str:
    """The first line of a library's error message (or its type's name), cut to ``limit`` characters:
    what fits inside a FashionCNNError's one line."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:limit]
