"""SIP lines (issue 6): the message layer (`message`, `headers`, `uri`), pure: bytes in, values out.

Nothing in this package opens a socket or reads a clock; the transport and the call logic built
on it give it datagrams and act on what it returns.
"""
