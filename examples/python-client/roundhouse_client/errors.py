"""The one error type of the client: a code from the server's table (src/errors.ts) and a message."""


class ClientError(Exception):
    """A refusal or failure with a machine-readable code, printed as `CODE: message`."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
